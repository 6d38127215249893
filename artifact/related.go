package artifact

import (
	"context"
	"fmt"

	"github.com/connectsoft/marketplace/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
)

// Cosign stores what refers to an artifact in tags named after its digest;
// these are the suffixes cosign v2 writes.
const (
	SignatureTagSuffix   = "sig"
	AttestationTagSuffix = "att"
	SBOMTagSuffix        = "sbom"
)

var cosignSuffixes = []string{SignatureTagSuffix, AttestationTagSuffix, SBOMTagSuffix}

// CosignTag is the tag cosign uses for the signatures (suffix "sig"),
// attestations ("att") or SBOMs ("sbom") of the artifact with digest d:
// sha256-<hex>.<suffix>.
func CosignTag(d digest.Digest, suffix string) string {
	return remote.ReferrersTag(d) + "." + suffix
}

// Related is something stored beside an artifact that refers to it: a
// cosign tag (signatures, attestations, SBOMs) or an OCI 1.1 referrer.
type Related struct {
	// Tag is the cosign tag, or "" for a referrer.
	Tag string `json:"tag,omitempty"`
	// Descriptor describes the related manifest.
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

// FindRelated lists the cosign tags and OCI referrers of subject on src.
// Registries without the referrers API are asked through oras-go's
// fallback tag schema; a store that can list neither yields only tags.
func FindRelated(ctx context.Context, src oras.ReadOnlyTarget, subject ocispec.Descriptor) ([]Related, error) {
	var out []Related
	for _, suffix := range cosignSuffixes {
		tag := CosignTag(subject.Digest, suffix)
		desc, err := src.Resolve(ctx, tag)
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", tag, err)
		}
		out = append(out, Related{Tag: tag, Descriptor: desc})
	}
	if gs, ok := src.(content.ReadOnlyGraphStorage); ok {
		refs, err := registry.Referrers(ctx, gs, subject, "")
		if err != nil && !IsNotFound(err) {
			return nil, fmt.Errorf("list referrers of %s: %w", subject.Digest, err)
		}
		for _, d := range refs {
			out = append(out, Related{Descriptor: d})
		}
	}
	return out, nil
}
