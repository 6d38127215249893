package signing

// Attacks on the key-based verification, offline, as a hostile publisher
// or registry would make them (from the review of signing without cosign's
// OCI packages): what cosign v2.6.5 refuses with the tlog ignored is
// refused here, and what it accepts is accepted.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

const hostileDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
const hostileOther = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

func hostileKey(t *testing.T) (signature.SignerVerifier, *Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := Fingerprint(priv.Public())
	return sv, &Key{Fingerprint: fp, Verifier: sv}
}

func hostileEvidence(t *testing.T) *Evidence {
	h, err := v1.NewHash(hostileDigest)
	if err != nil {
		t.Fatal(err)
	}
	return &Evidence{Digest: hostileDigest, hash: h}
}

func hostileSigLayer(t *testing.T, sv signature.Signer, payload []byte, ann map[string]string) sigLayer {
	t.Helper()
	raw, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	a := map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(raw)}
	for k, v := range ann {
		a[k] = v
	}
	return sigLayer{desc: v1.Descriptor{MediaType: ctypes.SimpleSigningMediaType, Annotations: a}, payload: payload}
}

func hostileCheckSig(t *testing.T, k *Key, s sigLayer) bool {
	ev := hostileEvidence(t)
	ev.signatures = []found{{s, FromTag}}
	res, err := ev.Check(context.Background(), VerifyOptions{Keys: []*Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Signatures[0].Verified
}

func hostileStatement(pt string, digests ...string) []byte {
	var subj []string
	for _, d := range digests {
		subj = append(subj, fmt.Sprintf(`{"name":"r/x","digest":{"sha256":%q}}`, strings.TrimPrefix(d, "sha256:")))
	}
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":%q,"subject":[%s],"predicate":{"time":"2026-01-01T00:00:00Z"}}`, pt, strings.Join(subj, ",")))
}

// hostileEnvelope signs body under payloadType with every signer, by hand (PAE).
func hostileEnvelope(t *testing.T, payloadType string, body []byte, signers ...signature.Signer) []byte {
	t.Helper()
	env := ssldsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(body)}
	for _, s := range signers {
		sig, err := s.SignMessage(bytes.NewReader(ssldsse.PAE(payloadType, body)))
		if err != nil {
			t.Fatal(err)
		}
		env.Signatures = append(env.Signatures, ssldsse.Signature{Sig: base64.StdEncoding.EncodeToString(sig)})
	}
	raw, _ := json.Marshal(env)
	return raw
}

func hostileCheckAtt(t *testing.T, keys []*Key, envelope []byte) AttestationResult {
	ev := hostileEvidence(t)
	ev.attestations = []found{{sigLayer{desc: v1.Descriptor{MediaType: ctypes.DssePayloadType, Annotations: map[string]string{signatureAnnotation: ""}}, payload: envelope}, FromTag}}
	res, err := ev.Check(context.Background(), VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return res.Attestations[0]
}

// Attacks that held: each must be refused (or, where cosign accepts, accepted).
func TestHostileSignaturePayloadAttacksHeld(t *testing.T) {
	sv, k := hostileKey(t)
	d, _ := name.NewDigest("reg.example/r/x@" + hostileDigest)
	good, _ := simpleSigningPayload(d)
	if !hostileCheckSig(t, k, hostileSigLayer(t, sv, good, nil)) {
		t.Fatal("baseline signature refused")
	}
	other := bytes.Replace(good, []byte(hostileDigest), []byte(hostileOther), 1)
	cases := map[string][]byte{
		"other digest": other,
		"other type":   bytes.Replace(good, []byte(`"cosign container image signature"`), []byte(`"atomic container signature"`), 1),
		// Go's decoder keeps the last duplicate: the other digest wins.
		"dup key, last other": []byte(`{"critical":{"identity":{"docker-reference":"reg.example/r/x"},"image":{"docker-manifest-digest":"` + hostileDigest + `","docker-manifest-digest":"` + hostileOther + `"},"type":"cosign container image signature"},"optional":null}`),
		"not json":            []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}"),
		"empty":               {},
	}
	for n, p := range cases {
		if hostileCheckSig(t, k, hostileSigLayer(t, sv, p, nil)) {
			t.Errorf("%s: accepted", n)
		}
	}
	// Signature valid for one payload, layer payload swapped (tamper).
	s := hostileSigLayer(t, sv, good, nil)
	s.payload = other
	if hostileCheckSig(t, k, s) {
		t.Error("swapped payload accepted")
	}
	// Base64 variants of the annotation: URL-safe / raw forms are refused,
	// as by cosign (StdEncoding); line breaks are ignored by Go's decoder
	// in both.
	raw, _ := sv.SignMessage(bytes.NewReader(good))
	for n, b64 := range map[string]string{
		"rawstd": base64.RawStdEncoding.EncodeToString(raw),
		"url":    base64.URLEncoding.EncodeToString(raw),
	} {
		if strings.ContainsAny(b64, "-_") || n == "rawstd" && len(raw)%3 != 0 {
			s := hostileSigLayer(t, sv, good, nil)
			s.desc.Annotations[signatureAnnotation] = b64
			if hostileCheckSig(t, k, s) {
				t.Errorf("%s annotation accepted", n)
			}
		}
	}
	// Accepted as by cosign: duplicated key, the last one names this digest;
	// unknown fields; case-folded keys.
	for n, p := range map[string][]byte{
		"dup key, last ours": []byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` + hostileOther + `","docker-manifest-digest":"` + hostileDigest + `"},"type":"cosign container image signature"},"optional":{"x":1},"zzz":[1,2]}`),
	} {
		if !hostileCheckSig(t, k, hostileSigLayer(t, sv, p, nil)) {
			t.Errorf("%s: refused (cosign accepts)", n)
		}
	}
}

func TestHostileAttestationAttacksHeld(t *testing.T) {
	sv, k := hostileKey(t)
	sv2, k2 := hostileKey(t)
	pt := "https://connectsoft.io/marketplace/review/v1"
	st := hostileStatement(pt, hostileDigest)
	if ar := hostileCheckAtt(t, []*Key{k}, hostileEnvelope(t, ctypes.IntotoPayloadType, st, sv)); !ar.Verified {
		t.Fatalf("baseline refused: %+v", ar)
	}
	refused := map[string][]byte{
		"wrong payloadType":   hostileEnvelope(t, "application/json", st, sv),
		"other subject":       hostileEnvelope(t, ctypes.IntotoPayloadType, hostileStatement(pt, hostileOther), sv),
		"signed by other key": hostileEnvelope(t, ctypes.IntotoPayloadType, st, sv2),
		"no signatures":       hostileEnvelope(t, ctypes.IntotoPayloadType, st),
		"sha512 subject only": hostileEnvelope(t, ctypes.IntotoPayloadType, bytes.Replace(st, []byte(`"sha256"`), []byte(`"sha512"`), 1), sv),
	}
	// Signature over the statement bytes, not the PAE.
	{
		sig, _ := sv.SignMessage(bytes.NewReader(st))
		env, _ := json.Marshal(ssldsse.Envelope{PayloadType: ctypes.IntotoPayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signatures: []ssldsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
		refused["sig without PAE"] = env
	}
	// payloadType changed after signing.
	{
		var env ssldsse.Envelope
		json.Unmarshal(hostileEnvelope(t, "application/json", st, sv), &env)
		env.PayloadType = ctypes.IntotoPayloadType
		refused["payloadType swapped"], _ = json.Marshal(env)
	}
	// URL-safe payload: DSSE decodes it, the subject check (StdEncoding) not.
	{
		var env ssldsse.Envelope
		json.Unmarshal(hostileEnvelope(t, ctypes.IntotoPayloadType, st, sv), &env)
		st2 := append(bytes.Clone(bytes.TrimSuffix(st, []byte("}"))), []byte(`,"x":"???>>>"}`)...)
		json.Unmarshal(hostileEnvelope(t, ctypes.IntotoPayloadType, st2, sv), &env)
		env.Payload = base64.URLEncoding.EncodeToString(st2)
		if env.Payload == base64.StdEncoding.EncodeToString(st2) {
			t.Fatal("url-safe payload equals the standard one")
		}
		refused["url-safe payload"], _ = json.Marshal(env)
	}
	for n, env := range refused {
		if ar := hostileCheckAtt(t, []*Key{k}, env); ar.Verified {
			t.Errorf("%s: accepted: %+v", n, ar)
		}
	}
	// As cosign: several subjects, one ours, verifies; an envelope with a
	// valid signature by another key and one by ours verifies, attributed
	// to ours only; the predicateType is the statement's, whatever the
	// layer annotation says.
	if ar := hostileCheckAtt(t, []*Key{k}, hostileEnvelope(t, ctypes.IntotoPayloadType, hostileStatement(pt, hostileOther, hostileDigest), sv)); !ar.Verified {
		t.Errorf("multi-subject refused: %+v", ar)
	}
	ar := hostileCheckAtt(t, []*Key{k2, k}, hostileEnvelope(t, ctypes.IntotoPayloadType, st, sv))
	if !ar.Verified || ar.Fingerprint != k.Fingerprint {
		t.Errorf("multi-key: %+v", ar)
	}
	ar = hostileCheckAtt(t, []*Key{k2}, hostileEnvelope(t, ctypes.IntotoPayloadType, st, sv, sv))
	if ar.Verified {
		t.Errorf("two sigs by another key verified with k2")
	}
}

// A signature layer whose certificate annotation is only whitespace is
// not a certificate; reading it must fail (or ignore it), not panic: a
// panic in Collect's goroutines ends the whole process (the index
// server's crawl), and anyone who can push a .sig manifest for an
// artifact can plant it. (cosign's sigLayer.Cert and the code before
// 5e1a5fa index certs[0] the same way: pre-existing, not a regression.)
func TestHostileWhitespaceCertificateAnnotationDoesNotPanic(t *testing.T) {
	for _, v := range []string{" ", "\n", " \r\n\t"} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("certificate annotation %q: panic: %v", v, r)
				}
			}()
			desc := v1.Descriptor{MediaType: ctypes.SimpleSigningMediaType, Annotations: map[string]string{signatureAnnotation: "", certificateAnnotation: v}}
			readLayer(desc, []byte("{}"))
		}()
	}
}

// An expired certificate on a key-made signature is refused (cosign's
// expiry check without a timestamp), and one with another key than the
// trusted one does not matter (cosign ignores it without the tlog).
func TestHostileCertificateOnLayerHeld(t *testing.T) {
	sv, k := hostileKey(t)
	d, _ := name.NewDigest("reg.example/r/x@" + hostileDigest)
	good, _ := simpleSigningPayload(d)
	s := hostileSigLayer(t, sv, good, nil)
	s.cert = &x509.Certificate{}
	if hostileCheckSig(t, k, s) {
		t.Error("zero-validity certificate accepted")
	}
}

// Keys cosign's verify --key reads: PKIX ("PUBLIC KEY") ECDSA, RSA and
// Ed25519, and PKCS#1 ("RSA PUBLIC KEY"), which cryptoutils'
// UnmarshalPEMToPublicKey (what cosign calls) accepts.
func TestHostilePublicKeyFormatsCosignReads(t *testing.T) {
	dir := t.TempDir()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkix := func(p crypto.PublicKey) []byte { b, _ := cryptoutils.MarshalPublicKeyToPEM(p); return b }
	for n, pemBytes := range map[string][]byte{
		"ecdsa-p384": pkix(ek.Public()),
		"rsa-pkix":   pkix(rk.Public()),
		"rsa-pkcs1":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}),
	} {
		f := filepath.Join(dir, n+".pub")
		os.WriteFile(f, pemBytes, 0o600)
		if _, err := LoadKey(context.Background(), f); err != nil {
			t.Errorf("%s: %v (cosign verify --key loads it)", n, err)
		}
	}
}

// cosign private keys: both PEM types, a wrong password, PKCS#1 inside.
func TestHostilePrivateKeysHeld(t *testing.T) {
	dir := t.TempDir()
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	enc, _ := encrypted.Encrypt(der, []byte("pw"))
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	enc1, _ := encrypted.Encrypt(x509.MarshalPKCS1PrivateKey(rk), []byte("pw"))
	pass := func(p string) PassFunc { return func(bool) ([]byte, error) { return []byte(p), nil } }
	for _, typ := range []string{sigstorePrivateKeyPEMType, cosignPrivateKeyPEMType} {
		f := filepath.Join(dir, strings.ReplaceAll(typ, " ", "_"))
		os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: enc}), 0o600)
		if _, err := LoadSigner(context.Background(), f, pass("pw")); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if _, err := LoadSigner(context.Background(), f, pass("wrong")); err == nil {
			t.Errorf("%s: wrong password accepted", typ)
		}
	}
	f := filepath.Join(dir, "pkcs1")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyPEMType, Bytes: enc1}), 0o600)
	if _, err := LoadSigner(context.Background(), f, pass("pw")); err == nil {
		t.Error("PKCS#1 inside an encrypted cosign key accepted (cosign refuses: ParsePKCS8PrivateKey)")
	}
}

// dupe check: the same payload signed by another key is not a duplicate;
// the same key's signature is.
func TestHostileDupeCheck(t *testing.T) {
	sv, _ := hostileKey(t)
	sv2, _ := hostileKey(t)
	d, _ := name.NewDigest("reg.example/r/x@" + hostileDigest)
	p, _ := simpleSigningPayload(d)
	mk := func(s signature.Signer) newLayer {
		raw, _ := s.SignMessage(bytes.NewReader(p))
		return makeLayer(p, ctypes.SimpleSigningMediaType, base64.StdEncoding.EncodeToString(raw), nil)
	}
	base, err := appendTo(emptySignatures(), mk(sv))
	if err != nil {
		t.Fatal(err)
	}
	if dup, err := isDuplicate(base, mk(sv2), sv2); err != nil || dup {
		t.Errorf("another key's signature taken for a duplicate: %v %v", dup, err)
	}
	if dup, err := isDuplicate(base, mk(sv), sv); err != nil || !dup {
		t.Errorf("same key's signature not a duplicate: %v %v", dup, err)
	}
	_ = dsse.WrapSigner
}

// An Ed25519 cosign key (cosign import-key-pair): mkt signs with
// Ed25519ph (cosign's GetDefaultLoadOptions) and verifies with
// LoadVerifier, pure Ed25519, so its own signature does not verify.
// Same before 5e1a5fa and in cosign's VerifierForKeyRef.
func TestHostileEd25519RoundTrip(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519GenerateKey()
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	enc, _ := encrypted.Encrypt(der, []byte("pw"))
	kf := filepath.Join(dir, "ed.key")
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyPEMType, Bytes: enc}), 0o600)
	s, err := LoadSigner(context.Background(), kf, func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	k, err := LoadKey(context.Background(), string(pub))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := name.NewDigest("reg.example/r/x@" + hostileDigest)
	p, _ := simpleSigningPayload(d)
	if !hostileCheckSig(t, k, hostileSigLayer(t, s, p, nil)) {
		t.Error("mkt's own Ed25519 signature does not verify with the matching public key")
	}
}

func ed25519GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}
