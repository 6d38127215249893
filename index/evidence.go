package index

import (
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/opencontainers/go-digest"
)

// evidenceKind says which evidence manifest a tag names.
type evidenceKind int

const (
	notEvidence  evidenceKind = iota
	sigEvidence               // sha256-<hex>.sig: cosign signatures
	attEvidence               // sha256-<hex>.att: cosign attestations
	refsEvidence              // sha256-<hex>: the referrers tag schema's index
	badEvidence               // looks like one of the above, but is not
)

// evidenceTag parses a tag that names evidence of an artifact: cosign's
// sha256-<hex>.sig and .att tags and the referrers tag sha256-<hex>. It
// returns the artifact's digest and the kind; a tag shaped like one but
// malformed (sha256-.att, a short or upper-case hex) is badEvidence, which
// callers skip: it is no evidence, and no reason to fail.
func evidenceTag(tag string) (digest.Digest, evidenceKind) {
	rest, ok := strings.CutPrefix(tag, "sha256-")
	if !ok {
		return "", notEvidence
	}
	kind := refsEvidence
	if hex, ok := strings.CutSuffix(rest, "."+artifact.SignatureTagSuffix); ok {
		rest, kind = hex, sigEvidence
	} else if hex, ok := strings.CutSuffix(rest, "."+artifact.AttestationTagSuffix); ok {
		rest, kind = hex, attEvidence
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, rest)
	if d.Validate() != nil || strings.ToLower(rest) != rest {
		return "", badEvidence
	}
	return d, kind
}

// set records digest m as the manifest of this kind.
func (k evidenceKind) set(ms *signing.Manifests, m string) {
	switch k {
	case sigEvidence:
		ms.Signatures = m
	case attEvidence:
		ms.Attestations = m
	case refsEvidence:
		ms.Referrers = m
	}
}
