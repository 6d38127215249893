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
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
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
	l := makeLayer(payload, ctypes.SimpleSigningMediaType, base64.StdEncoding.EncodeToString(raw), nil)
	if o.Referrers {
		// A referrer is a manifest of its own beside the older ones: it
		// holds only what is written now.
		err = c.writeSignatureReferrer(ctx, d, l)
	} else {
		// cosign's tag is rewritten whole: the new manifest keeps the older
		// signatures, and the dupe check skips one the key made already.
		var tag name.Tag
		if tag, err = cosignTag(d, sigTagSuffix); err == nil {
			err = c.appendToTag(ctx, tag, l, s)
		}
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
	l := makeLayer(envelope, ctypes.DssePayloadType, "", map[string]string{"predicateType": predicateType})
	if o.Referrers {
		err = c.writeAttestationReferrer(ctx, d, l)
	} else {
		var tag name.Tag
		if tag, err = cosignTag(d, attTagSuffix); err == nil {
			err = c.appendToTag(ctx, tag, l, s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("write attestation of %s: %w", ref, err)
	}
	return &Signed{Digest: d.DigestStr(), Reference: d.String(), Fingerprint: s.Fingerprint, PredicateType: predicateType}, nil
}

// resolve pins ref to a digest; a digest reference costs no request.
func (c *Client) resolve(ctx context.Context, ref string) (name.Digest, error) {
	r, err := c.parse(ref)
	if err != nil {
		return name.Digest{}, err
	}
	if d, ok := r.(name.Digest); ok {
		return d, nil
	}
	desc, err := ggcrremote.Get(r, c.remoteOpts(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.Context().Digest(desc.Digest.String()), nil
}

// attArtifactType is the referrer type of attestations, named as cosign
// names its signature referrers (application/vnd.dev.cosign.artifact.sig.v1+json).
const attArtifactType = "application/vnd.dev.cosign.artifact.att.v1+json"

// simpleSigningPayload is the payload a signature of d signs, as `cosign
// sign` writes it without annotations: the same bytes for the same digest
// and repository name.
func simpleSigningPayload(d name.Digest) ([]byte, error) {
	return (&sigpayload.Cosign{Image: d}).MarshalJSON()
}
