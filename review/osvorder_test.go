package review_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/connectsoft/marketplace/review"
)

// OSV does not require a range's events in order: its evaluation sorts
// them by version first. A record listing the later range before the
// earlier one must still match a version in the later range.
func TestOSVRangeEventsOutOfOrderStillMatch(t *testing.T) {
	dir := t.TempDir()
	rec := `{"id":"GHSA-unsorted-0001","summary":"two ranges listed late one first",
"database_specific":{"severity":"HIGH"},
"affected":[{"package":{"ecosystem":"npm","name":"lodash"},
"ranges":[{"type":"SEMVER","events":[{"introduced":"4.17.0"},{"fixed":"4.17.21"},{"introduced":"0"},{"fixed":"3.10.2"}]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "GHSA-unsorted-0001.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	files := cleanFiles()
	files["package-lock.json"] = file{content: `{"packages":{"node_modules/lodash":{"version":"4.17.20"}}}`}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir, Stage: "public"})
	fs := mustRejectFor(t, rep, review.CheckVulnerabilities)
	if len(fs) != 1 || fs[0].Rule != "GHSA-unsorted-0001" {
		t.Fatalf("findings %+v: want GHSA-unsorted-0001", fs)
	}
	// Versions outside both ranges still pass.
	files["package-lock.json"] = file{content: `{"packages":{"node_modules/lodash":{"version":"4.17.21"}}}`}
	rep = check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir})
	if c := rep.Check(review.CheckVulnerabilities); c.Status != review.Passed {
		t.Fatalf("4.17.21 flagged:\n%s", text(rep))
	}
	files["package-lock.json"] = file{content: `{"packages":{"node_modules/lodash":{"version":"3.10.5"}}}`}
	rep = check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir})
	if c := rep.Check(review.CheckVulnerabilities); c.Status != review.Passed {
		t.Fatalf("3.10.5 flagged:\n%s", text(rep))
	}
}
