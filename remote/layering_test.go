package remote_test

import (
	"os/exec"
	"strings"
	"testing"
)

// remote is a leaf (it imports nothing of this module) and signing reaches
// registries through it, not through artifact (DESIGN §8: remote ←
// artifact ← signing, with signing needing nothing of artifact's).
func TestRemoteIsALeafAndSigningDoesNotImportArtifact(t *testing.T) {
	const module = "github.com/connectsoft/marketplace"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		var ours []string
		for _, p := range strings.Fields(string(out)) {
			if p == module || strings.HasPrefix(p, module+"/") {
				ours = append(ours, p)
			}
		}
		return ours
	}
	if got := deps(module + "/remote"); len(got) != 1 {
		t.Errorf("remote depends on %v, want nothing of this module", got)
	}
	for _, p := range deps(module + "/signing") {
		if p == module+"/artifact" {
			t.Errorf("signing imports artifact")
		}
	}
}
