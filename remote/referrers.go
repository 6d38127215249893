package remote

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// ReferrersTag is the tag of the OCI referrers tag schema for d
// (sha256-<hex>): where clients keep d's referrers on registries without
// the referrers API, and the stem of cosign's tags. It lives here because
// both OCI stacks read it: oras-go's fallback (artifact) and signing's,
// which reads the tag directly on a registry known to lack the API.
func ReferrersTag(d digest.Digest) string {
	return strings.Replace(d.String(), ":", "-", 1)
}
