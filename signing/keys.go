package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/cosign/v2/pkg/blob"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// Key loading reads cosign's key files with sigstore's packages (signature,
// cryptoutils, kms), cosign's pkg/blob and go-securesystemslib's encrypted
// (cosign's key encryption), following cosign's pkg/cosign/keys.go step by
// step. cosign's pkg/signature, whose k8s://, gitlab:// and pkcs11: support
// links 281 Kubernetes packages, cost every mkt command about 10 ms of
// start-up; its pkg/cosign links the transparency-log client (go-openapi,
// gRPC, html/template) and cost about 3 ms more.

// PEM types of cosign's encrypted private keys: cosign generate-key-pair
// writes the first, older versions wrote the second.
const (
	sigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignPrivateKeyPEMType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// Errors a caller can test for with errors.Is; the messages around them say
// which key and what to do.
var (
	// ErrWrongPassword: an encrypted private key did not decrypt with the
	// password given.
	ErrWrongPassword = errors.New("wrong password for the private key")
	// ErrNotPrivateKey: signing was given a public key (or another PEM).
	ErrNotPrivateKey = errors.New("not a private key")
	// ErrNotPublicKey: verification was given something other than a
	// public key, such as the private key.
	ErrNotPublicKey = errors.New("not a public key")
	// ErrUnknownKMS: a KMS reference whose scheme no linked provider and no
	// sigstore KMS plugin on PATH serves.
	ErrUnknownKMS = errors.New("no KMS provider for the key reference")
)

// PasswordEnv is the variable the password of an encrypted private key is
// read from, as stock cosign reads it.
const PasswordEnv = "COSIGN_PASSWORD"

// PassFunc supplies the password of an encrypted private key; confirm is
// true when a new key is being created (cosign's PassFunc).
type PassFunc func(confirm bool) ([]byte, error)

// EnvPassword reads COSIGN_PASSWORD, as stock cosign does. An unset
// variable is an error, so that a forgotten password never silently
// becomes an empty one; set it to "" for keys without one.
func EnvPassword(bool) ([]byte, error) {
	pw, ok := os.LookupEnv(PasswordEnv)
	if !ok {
		return nil, errors.New(PasswordEnv + " is not set (set it to the key's password, or to \"\" for a key without one)")
	}
	return []byte(pw), nil
}

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's formats: the
// private key encrypted with the password (cosign.key), the public key as
// PEM (cosign.pub).
//
// The steps are cosign.GenerateKeyPair's: PKCS#8, encrypted with
// go-securesystemslib's encrypted.Encrypt, PEM type "ENCRYPTED SIGSTORE
// PRIVATE KEY".
func GenerateKeyPair(pass PassFunc) (privatePEM, publicPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: x509 encoding private key: %w", err)
	}
	pw := []byte{}
	if pass != nil {
		if pw, err = pass(true); err != nil {
			return nil, nil, fmt.Errorf("generate key pair: %w", err)
		}
	}
	enc, err := encrypted.Encrypt(der, pw)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyPEMType, Bytes: enc}), pub, nil
}

// Signer signs with one key and knows that key's fingerprint.
type Signer struct {
	signature.SignerVerifier
	Fingerprint string
}

// LoadSigner opens a private key: a cosign.key file (or env://VAR, http(s)
// URL, as cosign reads them), or a KMS reference (awskms://, gcpkms://,
// azurekms://, hashivault://) when its provider is linked into the program
// or a sigstore-kms-<scheme> plugin is on PATH.
func LoadSigner(ctx context.Context, ref string, pass PassFunc) (*Signer, error) {
	var sv signature.SignerVerifier
	var err error
	if IsKMSRef(ref) {
		sv, err = kmsKey(ctx, ref)
	} else {
		sv, err = privateKeyFile(ref, pass)
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", ref, err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", ref, err)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &Signer{SignerVerifier: sv, Fingerprint: fp}, nil
}

// privateKeyFile reads and decrypts a cosign private key. The steps are
// cosign.LoadPrivateKey's, taken one at a time so that each failure can say
// what is wrong: a public key where a private one belongs, or a wrong
// password, instead of "unsupported pem type" or "decrypt: encrypted:
// decryption failed".
func privateKeyFile(ref string, pass PassFunc) (signature.SignerVerifier, error) {
	pk, err := privateKey(ref, pass)
	if err != nil {
		return nil, err
	}
	// cosign signs with Ed25519ph for Ed25519 keys (GetDefaultLoadOptions).
	return signature.LoadDefaultSignerVerifier(pk, sigopts.WithED25519ph())
}

// LoadPrivateKey opens a cosign private key file (or env://VAR, http(s)
// URL) as the key itself, for signatures cosign does not make with it: a
// TUF snapshot's metadata is signed with the schemes TUF names (RSA-PSS,
// plain Ed25519, ECDSA over SHA-256), not cosign's defaults. KMS keys are
// not supported here.
func LoadPrivateKey(ref string, pass PassFunc) (crypto.Signer, error) {
	if IsKMSRef(ref) {
		return nil, fmt.Errorf("load private key %s: a KMS key cannot be used here; give a cosign key file", ref)
	}
	pk, err := privateKey(ref, pass)
	if err != nil {
		return nil, fmt.Errorf("load private key %s: %w", ref, err)
	}
	s, ok := pk.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load private key %s: %T cannot sign", ref, pk)
	}
	return s, nil
}

func privateKey(ref string, pass PassFunc) (crypto.PrivateKey, error) {
	raw, err := blob.LoadFileOrURL(ref)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: no PEM block (want a cosign.key, as mkt key generate or cosign generate-key-pair writes)", ErrNotPrivateKey)
	case block.Type == "PUBLIC KEY":
		return nil, fmt.Errorf("%w: this is a public key; signing needs the private key (the .key file of the pair, not the .pub)", ErrNotPrivateKey)
	case block.Type != cosignPrivateKeyPEMType && block.Type != sigstorePrivateKeyPEMType:
		return nil, fmt.Errorf("%w: PEM type %q (want %q, as mkt key generate or cosign generate-key-pair writes)", ErrNotPrivateKey, block.Type, sigstorePrivateKeyPEMType)
	}
	pw := []byte{}
	if pass != nil {
		if pw, err = pass(false); err != nil {
			return nil, err
		}
	}
	der, err := encrypted.Decrypt(block.Bytes, pw)
	if err != nil {
		// The secretbox cannot tell a wrong password from a damaged file;
		// the password is by far the likelier.
		return nil, fmt.Errorf("%w: give the key's password in %s (\"\" for a key without one) or type it when asked on a terminal", ErrWrongPassword, PasswordEnv)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	return pk, nil
}

// IsKMSRef reports whether ref names a key in a KMS (scheme://…) rather
// than a file, a URL or an environment variable holding one.
func IsKMSRef(ref string) bool {
	scheme, _, ok := strings.Cut(ref, "://")
	if !ok || strings.Contains(ref, "-----BEGIN") {
		return false
	}
	switch scheme {
	case "http", "https", "env":
		return false
	}
	return true
}

// kmsKey opens a KMS key through sigstore's provider registry: providers
// registered by import (cmd/mkt links none by default, see docs/signing.md)
// and, for any other scheme, sigstore's KMS plugin program
// sigstore-kms-<scheme> on PATH.
func kmsKey(ctx context.Context, ref string) (kms.SignerVerifier, error) {
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	var nf *kms.ProviderNotFoundError
	if errors.As(err, &nf) {
		scheme, _, _ := strings.Cut(ref, "://")
		return nil, fmt.Errorf("%w: no provider for %s:// is linked and no %s%s program is on PATH (docs/signing.md, \"KMS\")", ErrUnknownKMS, scheme, "sigstore-kms-", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return sv, nil
}

// Key is a trusted public key.
type Key struct {
	// Ref is where the key came from (file, KMS reference), for messages.
	Ref         string
	Fingerprint string
	Verifier    signature.Verifier
}

// LoadKey opens a public key: a PEM file (cosign.pub), a PEM string, an
// env://VAR or http(s) URL holding one, or a KMS reference.
func LoadKey(ctx context.Context, ref string) (*Key, error) {
	v, err := publicKey(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", ref, err)
	}
	pub, err := v.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", ref, err)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &Key{Ref: ref, Fingerprint: fp, Verifier: v}, nil
}

func publicKey(ctx context.Context, ref string) (signature.Verifier, error) {
	if IsKMSRef(ref) {
		return kmsKey(ctx, ref)
	}
	raw := []byte(ref)
	if !strings.Contains(ref, "-----BEGIN") {
		var err error
		if raw, err = blob.LoadFileOrURL(ref); err != nil {
			return nil, err
		}
	}
	// PKIX, and the PKCS#1 form of RSA keys, as cosign reads them.
	if block, _ := pem.Decode(raw); block != nil && block.Type != "PUBLIC KEY" && block.Type != "RSA PUBLIC KEY" {
		return nil, fmt.Errorf("%w: PEM type %q; verification needs the public key (the .pub file of the pair)", ErrNotPublicKey, block.Type)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotPublicKey, err)
	}
	// Ed25519 keys sign Ed25519ph here (LoadDefaultSignerVerifier, as
	// cosign signs): they must verify the same way, or an Ed25519 key
	// could never verify its own signatures.
	return signature.LoadVerifierWithOpts(pub, sigopts.WithHash(crypto.SHA256), sigopts.WithED25519ph())
}

// Fingerprint names a public key: the hex SHA-256 of its DER
// SubjectPublicKeyInfo, the same for a key whatever file or KMS holds it.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
