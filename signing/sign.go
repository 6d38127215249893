package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrmutate "github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// WriteOptions choose where signatures and attestations are stored.
type WriteOptions struct {
	// Referrers writes OCI 1.1 referrers instead of cosign's tags, for
	// registries with the referrers API.
	Referrers bool
}

// Signed says what was signed or attested. Its JSON names are the CLI's
// and the index API's (lowerCamelCase).
type Signed struct {
	// Digest is the artifact's manifest digest (sha256:…).
	Digest string `json:"digest"`
	// Reference is repository@digest.
	Reference string `json:"reference"`
	// Fingerprint identifies the key that signed.
	Fingerprint string `json:"fingerprint"`
	// PredicateType is set for attestations.
	PredicateType string `json:"predicateType,omitempty"`
}

// Sign signs the manifest that ref names, as `cosign sign --key` does: a
// simple-signing payload naming the digest, stored in the .sig tag (or as
// a referrer). The payload is the same for the same digest, so signing
// twice with one key adds no duplicate.
func (c *Client) Sign(ctx context.Context, ref string, s *Signer, o WriteOptions) (*Signed, error) {
	d, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	payload, err := simpleSigningPayload(d)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	raw, err := s.SignMessage(bytes.NewReader(payload), sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	opts := c.ociOpts(ctx)
	se, err := mutate.AttachSignatureToEntity(c.entity(ctx, d, o), sig, mutate.WithDupeDetector(cremote.NewDupeDetector(s)))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", ref, err)
	}
	if o.Referrers {
		err = ociremote.WriteSignaturesExperimentalOCI(d, se, opts...)
	} else {
		err = ociremote.WriteSignatures(d.Repository, se, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("write signature of %s: %w", ref, err)
	}
	return &Signed{Digest: d.DigestStr(), Reference: d.String(), Fingerprint: s.Fingerprint}, nil
}

// Attest signs predicate as an in-toto statement about the manifest that
// ref names, in a DSSE envelope, as `cosign attest --key --type URI` does.
// Predicates of our types are validated first (and given a time if they
// have none); a predicate that fails validation is never signed.
func (c *Client) Attest(ctx context.Context, ref string, s *Signer, predicateType string, predicate []byte, o WriteOptions) (*Signed, error) {
	predicate, err := NormalizePredicate(predicateType, predicate, time.Now())
	if err != nil {
		return nil, err
	}
	d, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: bytes.NewReader(predicate),
		Type:      predicateType,
		Digest:    strings.TrimPrefix(d.DigestStr(), "sha256:"),
		Repo:      d.Repository.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	envelope, err := dsse.WrapSigner(s, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(payload), sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	att, err := static.NewAttestation(envelope,
		static.WithLayerMediaType(ctypes.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}))
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	opts := c.ociOpts(ctx)
	se, err := mutate.AttachAttestationToEntity(c.entity(ctx, d, o), att, mutate.WithDupeDetector(cremote.NewDupeDetector(s)))
	if err != nil {
		return nil, fmt.Errorf("attest %s: %w", ref, err)
	}
	if o.Referrers {
		err = c.writeAttestationReferrer(ctx, d, se)
	} else {
		err = ociremote.WriteAttestations(d.Repository, se, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("write attestation of %s: %w", ref, err)
	}
	return &Signed{Digest: d.DigestStr(), Reference: d.String(), Fingerprint: s.Fingerprint, PredicateType: predicateType}, nil
}

// entity is what a new signature or attestation of d is attached to. For
// cosign's tags it is d with what its .sig and .att tags hold, since a tag
// is rewritten whole (the new manifest keeps the older signatures, and the
// dupe detector skips one the key made already). A referrer is a manifest
// of its own beside the older ones: it must hold only what is written now,
// or every signature and attestation in the tags is copied into it and
// listed twice.
func (c *Client) entity(ctx context.Context, d name.Digest, o WriteOptions) oci.SignedEntity {
	se := ociremote.SignedUnknown(d, c.ociOpts(ctx)...)
	if o.Referrers {
		return unsigned{se}
	}
	return se
}

// unsigned is a signed entity with its signatures and attestations left
// out.
type unsigned struct{ oci.SignedEntity }

func (unsigned) Signatures() (oci.Signatures, error)   { return empty.Signatures(), nil }
func (unsigned) Attestations() (oci.Signatures, error) { return empty.Signatures(), nil }

// resolve pins ref to a digest; a digest reference costs no request.
func (c *Client) resolve(ctx context.Context, ref string) (name.Digest, error) {
	r, err := c.parse(ref)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := ociremote.ResolveDigest(r, c.ociOpts(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return d, nil
}

// attArtifactType is the referrer type of attestations, named as cosign
// names its signature referrers (application/vnd.dev.cosign.artifact.sig.v1+json).
const attArtifactType = "application/vnd.dev.cosign.artifact.att.v1+json"

// writeAttestationReferrer stores the entity's attestation image as an OCI
// 1.1 referrer of d: the image cosign built, with the subject set and the
// config media type naming it, exactly as cosign's
// WriteSignaturesExperimentalOCI does for signatures. (cosign's own
// WriteAttestationsReferrer drops the layer annotations, including the
// signature annotation its reader requires.)
func (c *Client) writeAttestationReferrer(ctx context.Context, d name.Digest, se oci.SignedEntity) error {
	atts, err := se.Attestations()
	if err != nil {
		return err
	}
	ro := append([]ggcrremote.Option{ggcrremote.WithContext(ctx)}, c.remote...)
	subject, err := ggcrremote.Head(d, ro...)
	if err != nil {
		return fmt.Errorf("head %s: %w", d, err)
	}
	img := ggcrmutate.ConfigMediaType(atts, attArtifactType)
	img = ggcrmutate.Subject(img, *subject).(v1.Image)
	h, err := img.Digest()
	if err != nil {
		return err
	}
	return ggcrremote.Write(d.Repository.Digest(h.String()), img, ro...)
}

// simpleSigningPayload is the payload a signature of d signs, as `cosign
// sign` writes it without annotations: the same bytes for the same digest
// and repository name.
func simpleSigningPayload(d name.Digest) ([]byte, error) {
	return (&sigpayload.Cosign{Image: d}).MarshalJSON()
}
