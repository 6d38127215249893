package signing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
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
	sig    oci.Signature
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
	opts := c.ociOpts(ctx)
	var mu sync.Mutex
	add := func(isAtt bool, source string, sigs []oci.Signature) {
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
	// cosignTag reads one of cosign's manifests: by the known digest, else
	// through the tag, else by the fallback digest.
	cosignTag := func(isAtt bool, known, fallback string, tagOf func(name.Reference, ...ociremote.Option) (name.Tag, error)) (string, error) {
		if known != "" {
			sigs, at, err := fetchSignatures(d.Repository.Digest(known), d, opts)
			add(isAtt, FromTag, sigs)
			return at, err
		}
		tag, err := tagOf(d, opts...)
		if err != nil {
			return "", err
		}
		sigs, at, err := fetchSignatures(tag, d, opts)
		if err == nil && at == "" && fallback != "" {
			sigs, at, err = fetchSignatures(d.Repository.Digest(fallback), d, opts)
		}
		add(isAtt, FromTag, sigs)
		return at, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ev.Manifests.Signatures, err = cosignTag(false, o.Known.Signatures, o.Fallback.Signatures, ociremote.SignatureTag)
		return err
	})
	g.Go(func() (err error) {
		ev.Manifests.Attestations, err = cosignTag(true, o.Known.Attestations, o.Fallback.Attestations, ociremote.AttestationTag)
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
			if err == nil && !c.knownWithoutReferrers(d.RegistryStr()) {
				api, aerr := ociremote.Referrers(d, "", c.ociOpts(gctx)...)
				switch {
				case c.knownWithoutReferrers(d.RegistryStr()) || isNotFound(aerr):
				case aerr != nil:
					err = aerr
				default:
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
			// Registries fill the index's artifactType differently (ggcr
			// reports the config media type, so cosign's attestation
			// referrers read as the empty type): skip only what is surely
			// something else, and classify the rest by their layers.
			switch m.ArtifactType {
			case sigArtifactType, attArtifactType, ctypes.IntotoPayloadType, "application/vnd.oci.empty.v1+json", "":
			default:
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
			sigs, _, err := fetchSignatures(d.Repository.Digest(r), d, opts)
			if err != nil {
				return err
			}
			var ss, as []oci.Signature
			for _, s := range sigs {
				switch mt, _ := s.MediaType(); string(mt) {
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
		idx, err := ociremote.Referrers(d, "", c.ociOpts(ctx)...)
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
	if c.knownWithoutReferrers(d.RegistryStr()) {
		return "", nil
	}
	idx, err := ociremote.Referrers(d, "", c.ociOpts(ctx)...)
	if c.knownWithoutReferrers(d.RegistryStr()) || isNotFound(err) {
		return "", nil // answered from the referrers tag, or nothing
	}
	if err != nil {
		return "", fmt.Errorf("list referrers of %s: %w", ref, err)
	}
	return referrersFingerprint(idx), nil
}

// referrersFingerprint is the sha256 of the sorted digests of idx's
// evidence manifests (signatures and attestations, as CollectFrom reads
// them), "" for none.
func referrersFingerprint(idx *v1.IndexManifest) string {
	var ds []string
	for _, m := range idx.Manifests {
		switch m.ArtifactType {
		case sigArtifactType, attArtifactType, ctypes.IntotoPayloadType, "application/vnd.oci.empty.v1+json", "":
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

// referrersIndex reads a referrers-tag index by digest.
func (c *Client) referrersIndex(ctx context.Context, ref name.Digest) (*v1.IndexManifest, error) {
	idx, err := ggcrremote.Index(ref, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	return idx.IndexManifest()
}

// fetchSignatures reads every layer of a signature or attestation manifest
// about subject into memory (they are small), so that checking them against
// several keys fetches nothing twice, and returns the manifest's digest. A
// missing manifest means none (and digest "").
//
// A simple-signing layer whose digest is that of the payload `cosign sign`
// and Sign write for subject is not read: a digest names fixed content, so
// that payload is the layer. Every signed version's ingest saves a blob
// read so; a payload written otherwise (another registry name, annotations)
// is read as before.
func fetchSignatures(ref name.Reference, subject name.Digest, opts []ociremote.Option) ([]oci.Signature, string, error) {
	sigs, err := ociremote.Signatures(ref, opts...)
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	h, err := sigs.Digest()
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if h == emptySignaturesDigest() { // what cosign returns for a 404
		return nil, "", nil
	}
	list, err := sigs.Get()
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]oci.Signature, 0, len(list))
	for _, s := range list {
		// A layer without cosign's signature annotation can never verify;
		// it is not evidence either way. Anything else that fails to read
		// is a registry fault and is reported as one.
		if ann, err := s.Annotations(); err != nil || !hasKey(ann, static.SignatureAnnotationKey) {
			continue
		}
		if p := predictedPayload(s, subject); p != nil {
			s = knownPayload{s, p}
		}
		cp, err := static.Copy(s)
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", ref, err)
		}
		out = append(out, cp)
	}
	return out, h.String(), nil
}

// predictedPayload returns the simple-signing payload for subject that
// Sign and `cosign sign` write when s's layer is exactly it, else nil.
func predictedPayload(s oci.Signature, subject name.Digest) []byte {
	if mt, err := s.MediaType(); err != nil || string(mt) != ctypes.SimpleSigningMediaType {
		return nil
	}
	h, err := s.Digest()
	if err != nil {
		return nil
	}
	size, err := s.Size()
	if err != nil {
		return nil
	}
	p, err := simpleSigningPayload(subject)
	if err != nil || int64(len(p)) != size {
		return nil
	}
	if sum := sha256.Sum256(p); h.Algorithm != "sha256" || h.Hex != hex.EncodeToString(sum[:]) {
		return nil
	}
	return p
}

// knownPayload is a signature layer whose payload is known by its digest:
// reading it returns those bytes and asks the registry nothing.
type knownPayload struct {
	ociSignature // not oci.Signature: a field of that name would hide its Signature method
	payload      []byte
}

type ociSignature = oci.Signature

func (k knownPayload) Payload() ([]byte, error) { return k.payload, nil }

// emptySignaturesDigest is the digest of cosign's empty.Signatures(), which
// ociremote.Signatures returns for a missing manifest instead of an error.
var emptySignaturesDigest = sync.OnceValue(func() v1.Hash {
	h, _ := empty.Signatures().Digest()
	return h
})

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound) {
		return true
	}
	var enf *ociremote.EntityNotFoundError
	return errors.As(err, &enf)
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
			co := &cosign.CheckOpts{SigVerifier: k.Verifier, IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.SimpleClaimVerifier}
			if _, err := cosign.VerifyImageSignature(ctx, f.sig, ev.hash, co); err == nil {
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
		if raw, err := f.sig.Payload(); err == nil {
			if st, err := DecodeEnvelope(raw); err == nil {
				ar.Statement, ar.PredicateType, ar.Time = st, st.PredicateType, st.PredicateTime()
			} else {
				ar.Error = err.Error()
			}
		}
		if ar.Statement != nil {
			for _, k := range o.Keys {
				co := &cosign.CheckOpts{SigVerifier: k.Verifier, IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.IntotoSubjectClaimVerifier}
				if _, err := cosign.VerifyBlobAttestation(ctx, f.sig, ev.hash, co); err == nil {
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

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

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
