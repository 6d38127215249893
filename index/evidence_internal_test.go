package index

import (
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
)

// FuzzEvidenceTag checks the evidence tag parser against its definition:
// a tag is evidence exactly when it is sha256-<64 lowercase hex>, with
// .sig or .att or nothing after, and the digest and kind it returns
// rebuild the tag; anything else beginning with sha256- is badEvidence.
func FuzzEvidenceTag(f *testing.F) {
	hex := strings.Repeat("ab", 32)
	for _, s := range []string{"1.0.0", "sha256-.att", "sha256-" + hex, "sha256-" + hex + ".sig", "sha256-" + hex + ".att",
		"sha256-" + hex + ".sbom", "sha256-" + strings.ToUpper(hex) + ".sig", "sha256-" + hex[:10] + ".sig", "sha256-" + hex + ".sig.sig"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		d, kind := evidenceTag(tag)
		if !strings.HasPrefix(tag, "sha256-") {
			if kind != notEvidence {
				t.Fatalf("%q: kind %d without the sha256- prefix", tag, kind)
			}
			return
		}
		if kind == notEvidence {
			t.Fatalf("%q: a sha256- tag is evidence or badEvidence", tag)
		}
		if kind == badEvidence {
			if d != "" {
				t.Fatalf("%q: badEvidence with a digest %s", tag, d)
			}
			return
		}
		want := remote.ReferrersTag(d)
		switch kind {
		case sigEvidence:
			want = artifact.CosignTag(d, artifact.SignatureTagSuffix)
		case attEvidence:
			want = artifact.CosignTag(d, artifact.AttestationTagSuffix)
		}
		if want != tag || d.Validate() != nil {
			t.Fatalf("%q parsed as %s kind %d, which names %q", tag, d, kind, want)
		}
	})
}
