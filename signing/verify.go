package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
	"golang.org/x/sync/errgroup"
)

// Where a signature or attestation was found.
const (
	FromTag      = "tag"
	FromReferrer = "referrer"
)

// sigArtifactType is the artifactType cosign gives signature referrers.
const sigArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"

// Evidence is everything stored about one artifact digest: the signatures
// and attestations from cosign's tags and from OCI referrers, with their
// payloads already fetched. Checking it against keys needs no registry.
type Evidence struct {
	Reference    string
	Digest       string
	hash         v1.Hash
	signatures   []found
	attestations []found
	// Manifests are the evidence manifests read, by digest.
	Manifests Manifests
	// Requests is how many registry requests collecting took.
	Requests int64
}

type found struct {
	sig    sigLayer
	source string
}

// Collect fetches the evidence for the artifact ref names: its digest, the
// .sig and .att tags and its referrers, in parallel, each payload once.
func (c *Client) Collect(ctx context.Context, ref string) (*Evidence, error) {
	return c.CollectFrom(ctx, ref, CollectOptions{})
}

// Manifests names the manifests that hold an artifact's evidence by
// digest: cosign's .sig and .att manifests and the index under its
// referrers tag (sha256-<hex>). "" is none.
type Manifests struct {
	Signatures   string `json:"sig,omitempty"`
	Attestations string `json:"att,omitempty"`
	Referrers    string `json:"ref,omitempty"`
	// ReferrersAPI fingerprints what the registry's referrers API listed
	// (ReferrersFingerprint), where it has one: referrers pushed there have
	// no tag whose digest a crawl could compare. It is never read by.
	ReferrersAPI string `json:"api,omitempty"`
}

// CollectOptions say which evidence manifests a caller already knows. A
// registry notification names the manifest it is about before the registry
// has linked the tag to it (distribution notifies, then tags): reading the
// tag then would find nothing, or the previous manifest.
type CollectOptions struct {
	// Known manifests are read by digest instead of through their tags.
	Known Manifests
	// Fallback manifests are read by digest when their tag is missing
	// (not linked yet), instead of counting as no evidence.
	Fallback Manifests
	// Referrers are referrer manifests of the artifact named by digest,
	// read besides those the referrers API or tag lists (which may not
	// list them yet); duplicates are read once.
	Referrers []string
}

// CollectFrom is Collect with the evidence manifests o names read by
// digest. Evidence.Manifests says which manifests the evidence came from.
func (c *Client) CollectFrom(ctx context.Context, ref string, o CollectOptions) (*Evidence, error) {
	start := c.Requests()
	d, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Reference: ref, Digest: d.DigestStr(), hash: h}
	var mu sync.Mutex
	add := func(isAtt bool, source string, sigs []sigLayer) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range sigs {
			if isAtt {
				ev.attestations = append(ev.attestations, found{s, source})
			} else {
				ev.signatures = append(ev.signatures, found{s, source})
			}
		}
	}
	// fromTag reads one of cosign's manifests: by the known digest, else
	// through the tag, else by the fallback digest.
	fromTag := func(isAtt bool, known, fallback, suffix string) (string, error) {
		if known != "" {
			sigs, at, err := c.readSignatures(ctx, d.Repository.Digest(known), d)
			add(isAtt, FromTag, sigs)
			return at, err
		}
		tag, err := cosignTag(d, suffix)
		if err != nil {
			return "", err
		}
		sigs, at, err := c.readSignatures(ctx, tag, d)
		if err == nil && at == "" && fallback != "" {
			sigs, at, err = c.readSignatures(ctx, d.Repository.Digest(fallback), d)
		}
		add(isAtt, FromTag, sigs)
		return at, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ev.Manifests.Signatures, err = fromTag(false, o.Known.Signatures, o.Fallback.Signatures, sigTagSuffix)
		return err
	})
	g.Go(func() (err error) {
		ev.Manifests.Attestations, err = fromTag(true, o.Known.Attestations, o.Fallback.Attestations, attTagSuffix)
		return err
	})
	g.Go(func() error {
		var idx *v1.IndexManifest
		var err error
		switch {
		case o.Known.Referrers != "":
			idx, err = c.referrersIndex(gctx, d.Repository.Digest(o.Known.Referrers))
			ev.Manifests.Referrers = o.Known.Referrers
			// A registry with the referrers API lists there what no tag
			// holds: both count, and the API's answer is fingerprinted as
			// the crawl fingerprints it, or each crawl would differ.
			if err == nil {
				api, ok, aerr := c.referrersAPI(gctx, d)
				switch {
				case aerr != nil:
					err = aerr
				case ok:
					ev.Manifests.ReferrersAPI = referrersFingerprint(api)
					idx = &v1.IndexManifest{Manifests: append(append([]v1.Descriptor(nil), idx.Manifests...), api.Manifests...)}
				}
			}
		default:
			var at string
			idx, at, err = c.referrers(gctx, d)
			if err == nil && at == "" && !c.knownWithoutReferrers(d.RegistryStr()) {
				ev.Manifests.ReferrersAPI = referrersFingerprint(idx)
			}
			if isNotFound(err) && o.Fallback.Referrers != "" {
				idx, err = c.referrersIndex(gctx, d.Repository.Digest(o.Fallback.Referrers))
				at = o.Fallback.Referrers
			}
			ev.Manifests.Referrers = at
		}
		if isNotFound(err) {
			idx, err = &v1.IndexManifest{}, nil
		}
		if err != nil {
			return fmt.Errorf("list referrers: %w", err)
		}
		seen := map[string]bool{}
		var refs []string
		for _, m := range idx.Manifests {
			if !mayBeEvidence(m.ArtifactType) {
				continue
			}
			if !seen[m.Digest.String()] {
				seen[m.Digest.String()] = true
				refs = append(refs, m.Digest.String())
			}
		}
		for _, r := range o.Referrers {
			if !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
		for _, r := range refs {
			sigs, _, err := c.readSignatures(ctx, d.Repository.Digest(r), d)
			if err != nil {
				return err
			}
			var ss, as []sigLayer
			for _, s := range sigs {
				switch s.mediaType() {
				case ctypes.DssePayloadType:
					as = append(as, s)
				case ctypes.SimpleSigningMediaType:
					ss = append(ss, s)
				}
			}
			add(false, FromReferrer, ss)
			add(true, FromReferrer, as)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("collect signatures of %s: %w", ref, err)
	}
	ev.Requests = c.Requests() - start
	return ev, nil
}

// referrers lists d's referrers. A registry known to lack the referrers
// API is not asked again: its referrers tag (sha256-<hex>), where clients
// put referrers on such registries, is read directly, saving a request per
// artifact.
// It returns the digest of the referrers-tag index it read, "" when the
// referrers API answered.
func (c *Client) referrers(ctx context.Context, d name.Digest) (*v1.IndexManifest, string, error) {
	if !c.knownWithoutReferrers(d.RegistryStr()) {
		idx, err := c.listReferrers(ctx, d)
		return idx, "", err
	}
	tag := d.Context().Tag(remote.ReferrersTag(digest.Digest(d.DigestStr())))
	idx, err := ggcrremote.Index(tag, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, "", err
	}
	h, err := idx.Digest()
	if err != nil {
		return nil, "", err
	}
	m, err := idx.IndexManifest()
	return m, h.String(), err
}

// ReferrersFingerprint asks the registry's referrers API which evidence
// manifests refer to the artifact ref ("host/repo@sha256:…") names, and
// returns a fingerprint of the answer that changes when one is added,
// replaced or removed: what a crawl compares where referrers have no tag.
// It is "" for a registry without the API (asked once per ten minutes);
// their referrers are under the sha256-<hex> tag, which the crawl compares.
func (c *Client) ReferrersFingerprint(ctx context.Context, ref string) (string, error) {
	d, err := name.NewDigest(ref, c.nameOpts...)
	if err != nil {
		return "", err
	}
	idx, ok, err := c.referrersAPI(ctx, d)
	if err != nil {
		return "", fmt.Errorf("list referrers of %s: %w", ref, err)
	}
	if !ok {
		return "", nil
	}
	return referrersFingerprint(idx), nil
}

// mayBeEvidence says whether a referrer of this artifactType may be a
// signature or attestation. Registries fill the index's artifactType
// differently (ggcr reports the config media type, so cosign's attestation
// referrers read as the empty type): only what is surely something else
// is left out, and the rest is classified by its layers.
func mayBeEvidence(artifactType string) bool {
	switch artifactType {
	case sigArtifactType, attArtifactType, ctypes.IntotoPayloadType, "application/vnd.oci.empty.v1+json", "":
		return true
	}
	return false
}

// referrersFingerprint is the sha256 of the sorted digests of idx's
// evidence manifests (signatures and attestations, as CollectFrom reads
// them), "" for none.
func referrersFingerprint(idx *v1.IndexManifest) string {
	var ds []string
	for _, m := range idx.Manifests {
		if mayBeEvidence(m.ArtifactType) {
			ds = append(ds, m.Digest.String())
		}
	}
	if len(ds) == 0 {
		return ""
	}
	sort.Strings(ds)
	sum := sha256.Sum256([]byte(strings.Join(ds, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// referrersAPI lists d's referrers through the registry's referrers API,
// or, for a registry without it, go-containerregistry's fallback: the
// referrers tag (sha256-<hex>).
// referrersAPI lists d's referrers through the registry's referrers API.
// ok is false for a registry without the API (known, or learnt from this
// call's 404, which go-containerregistry answers from the referrers tag)
// and for an artifact with no referrers: neither has an API answer.
func (c *Client) referrersAPI(ctx context.Context, d name.Digest) (idx *v1.IndexManifest, ok bool, err error) {
	if c.knownWithoutReferrers(d.RegistryStr()) {
		return nil, false, nil
	}
	idx, err = c.listReferrers(ctx, d)
	if c.knownWithoutReferrers(d.RegistryStr()) || isNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return idx, true, nil
}

// listReferrers asks the referrers API; on a 404 go-containerregistry
// answers from the referrers tag, and the transport notes the registry as
// one without the API.
func (c *Client) listReferrers(ctx context.Context, d name.Digest) (*v1.IndexManifest, error) {
	idx, err := ggcrremote.Referrers(d, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	return idx.IndexManifest()
}

// referrersIndex reads a referrers-tag index by digest.
func (c *Client) referrersIndex(ctx context.Context, ref name.Digest) (*v1.IndexManifest, error) {
	idx, err := ggcrremote.Index(ref, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	return idx.IndexManifest()
}

// SignatureResult is one signature and what checking it showed.
type SignatureResult struct {
	Source string `json:"source"`
	// Fingerprint is the trusted key that verified it; "" when none did.
	Fingerprint string `json:"fingerprint,omitempty"`
	Verified    bool   `json:"verified"`
	Error       string `json:"error,omitempty"`
}

// AttestationResult is one attestation and what checking it showed.
type AttestationResult struct {
	Source        string     `json:"source"`
	PredicateType string     `json:"predicateType"`
	Fingerprint   string     `json:"fingerprint,omitempty"`
	Verified      bool       `json:"verified"`
	Time          time.Time  `json:"time,omitzero"`
	Statement     *Statement `json:"statement,omitempty"`
	Error         string     `json:"error,omitempty"`
	order         int
}

// Result is what checking an artifact's evidence against keys showed,
// signature by signature and attestation by attestation. It holds no
// verdict: policy.Decision is the one verdict, for a policy file and for
// `mkt verify --key` (a key-only policy) alike.
type Result struct {
	Reference    string              `json:"reference"`
	Digest       string              `json:"digest"`
	Signatures   []SignatureResult   `json:"signatures"`
	Attestations []AttestationResult `json:"attestations"`
	Requests     int64               `json:"registryRequests"`
}

// Latest is the newest verified attestation of a predicate type (by its
// predicate's time, then by the order it was stored in), or nil. This is
// the statement that counts: a revoked review after an approval wins.
func (r *Result) Latest(predicateType string) *AttestationResult {
	var best *AttestationResult
	for i := range r.Attestations {
		a := &r.Attestations[i]
		if !a.Verified || a.PredicateType != predicateType {
			continue
		}
		if best == nil || a.Time.After(best.Time) || (a.Time.Equal(best.Time) && a.order > best.order) {
			best = a
		}
	}
	return best
}

// VerifyOptions say which keys evidence is checked against.
type VerifyOptions struct {
	// Keys are the trusted public keys; with none, evidence is only listed.
	Keys []*Key
}

// Verify collects the evidence for ref and checks it against the keys.
func (c *Client) Verify(ctx context.Context, ref string, o VerifyOptions) (*Result, error) {
	ev, err := c.Collect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return ev.Check(ctx, o)
}

// Check verifies the collected evidence against keys, with cosign's
// key-based checks (verifySignature, verifyAttestation) over sigstore's
// verifiers and offline (no transparency log): signatures must carry a
// simple-signing claim for this digest, attestations an in-toto subject
// with this digest, so a signature copied over from another artifact, or
// a tampered payload, verifies with no key. With no keys it only lists
// what is stored. What the results mean is for a policy to decide.
func (ev *Evidence) Check(ctx context.Context, o VerifyOptions) (*Result, error) {
	res := &Result{Reference: ev.Reference, Digest: ev.Digest, Requests: ev.Requests}
	for _, f := range ev.signatures {
		sr := SignatureResult{Source: f.source}
		for _, k := range o.Keys {
			if verifySignature(ctx, k.Verifier, &f.sig, ev.hash) == nil {
				sr.Verified, sr.Fingerprint = true, k.Fingerprint
				break
			}
		}
		if !sr.Verified && len(o.Keys) > 0 {
			sr.Error = notVerified("signature", o.Keys)
		}
		res.Signatures = append(res.Signatures, sr)
	}
	for i, f := range ev.attestations {
		ar := AttestationResult{Source: f.source, order: i}
		if st, err := DecodeEnvelope(f.sig.payload); err == nil {
			ar.Statement, ar.PredicateType, ar.Time = st, st.PredicateType, st.PredicateTime()
		} else {
			ar.Error = err.Error()
		}
		if ar.Statement != nil {
			for _, k := range o.Keys {
				if verifyAttestation(ctx, k.Verifier, &f.sig, ev.hash) == nil {
					ar.Verified, ar.Fingerprint = true, k.Fingerprint
					break
				}
			}
			if !ar.Verified && len(o.Keys) > 0 {
				ar.Error = notVerified(ShortName(ar.PredicateType)+" attestation", o.Keys)
			}
		}
		res.Attestations = append(res.Attestations, ar)
	}
	return res, nil
}

// verifySignature is cosign's key-based, offline check of a signature
// (VerifyImageSignature with a key, the transparency log ignored, and
// SimpleClaimVerifier): the signature annotation verifies over the payload
// with v, the payload is a simple-signing claim of type "cosign container
// image signature" for digest h, and a certificate the layer carries, if
// any, is valid now.
func verifySignature(ctx context.Context, v signature.Verifier, s *sigLayer, h v1.Hash) error {
	sig, err := base64.StdEncoding.DecodeString(s.desc.Annotations[signatureAnnotation])
	if err != nil {
		return err
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(s.payload), sigopts.WithContext(ctx)); err != nil {
		return err
	}
	var claim sigpayload.SimpleContainerImage
	if err := json.Unmarshal(s.payload, &claim); err != nil {
		return err
	}
	if got := claim.Critical.Image.DockerManifestDigest; got != h.String() {
		return fmt.Errorf("invalid or missing digest in claim: %s", got)
	}
	if claim.Critical.Type != sigpayload.CosignSignatureType {
		return fmt.Errorf("claim of type %q, want %q", claim.Critical.Type, sigpayload.CosignSignatureType)
	}
	return checkCertificate(s)
}

// verifyAttestation is cosign's key-based, offline check of an
// attestation (VerifyImageAttestation with a key, the transparency log
// ignored, and IntotoSubjectClaimVerifier): the layer is a DSSE envelope
// of an in-toto statement whose signature verifies with v, a subject of
// the statement has sha256 digest h, and a certificate the layer carries,
// if any, is valid now.
func verifyAttestation(ctx context.Context, v signature.Verifier, s *sigLayer, h v1.Hash) error {
	var env ssldsse.Envelope
	if err := json.Unmarshal(s.payload, &env); err != nil {
		return err
	}
	if env.PayloadType != ctypes.IntotoPayloadType {
		return fmt.Errorf("invalid payloadType %s on envelope. Expected %s", env.PayloadType, ctypes.IntotoPayloadType)
	}
	ev, err := ssldsse.NewEnvelopeVerifier(&dsse.VerifierAdapter{SignatureVerifier: v})
	if err != nil {
		return err
	}
	if _, err := ev.Verify(ctx, &env); err != nil {
		return err
	}
	statement, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return err
	}
	var st Statement
	if err := json.Unmarshal(statement, &st); err != nil {
		return err
	}
	matched := false
	for _, subj := range st.Subject {
		if d, ok := subj.Digest["sha256"]; ok && "sha256:"+d == h.String() {
			matched = true
			break
		}
	}
	if !matched {
		return errors.New("no matching subject digest found")
	}
	return checkCertificate(s)
}

// checkCertificate is cosign's expiry check of a certificate a layer
// carries beside a key-made signature: with no transparency log and no
// signed timestamp, it must be valid now.
func checkCertificate(s *sigLayer) error {
	if s.cert == nil {
		return nil
	}
	if now := time.Now(); s.cert.NotAfter.Before(now) || s.cert.NotBefore.After(now) {
		return fmt.Errorf("certificate valid from %s to %s, not now: expected a signed timestamp to verify an expired certificate",
			s.cert.NotBefore.Format(time.RFC3339), s.cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// notVerified says that a signature or attestation of this digest verifies
// with none of the keys tried, and names them: cosign's own errors ("invalid
// signature when validating ASN.1 encoded signature", DSSE's "accepted
// signatures do not match threshold, Found: 0") say neither.
func notVerified(what string, tried []*Key) string {
	names := make([]string, len(tried))
	for i, k := range tried {
		names[i] = short(k.Fingerprint)
		if k.Ref != "" && !strings.Contains(k.Ref, "-----BEGIN") {
			names[i] += " (" + k.Ref + ")"
		}
	}
	return fmt.Sprintf("%s not made for this digest by any of the %d keys tried: %s", what, len(tried), strings.Join(names, ", "))
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// VerifyMany verifies refs with at most concurrency verifications in
// flight (0 means 8), returning results in the order of refs. A registry
// error for one ref fails the call; a failed verification does not.
func (c *Client) VerifyMany(ctx context.Context, refs []string, o VerifyOptions, concurrency int) ([]*Result, error) {
	if concurrency <= 0 {
		concurrency = 8
	}
	out := make([]*Result, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, ref := range refs {
		g.Go(func() error {
			res, err := c.Verify(gctx, ref, o)
			out[i] = res
			return err
		})
	}
	return out, g.Wait()
}
