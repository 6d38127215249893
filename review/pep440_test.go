package review_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/review"
)

// A PyPI version outside SemVer's grammar (a post-release, a PEP 440
// pre-release) inside an affected range is affected.
func TestPyPIVersionOutsideSemVerInsideAnAffectedRange(t *testing.T) {
	var af review.Affected
	if err := json.Unmarshal([]byte(`{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}`), &af); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2.30.0", "2.30.0.post1", "2.31.0rc1", "2.30.0.dev1"} {
		if !af.Affects(v) {
			t.Errorf("%s: not affected, want affected by [2.3.0, 2.31.0)", v)
		}
	}
}

// affected decodes one OSV "affected" entry.
func affected(t *testing.T, js string) review.Affected {
	t.Helper()
	var af review.Affected
	if err := json.Unmarshal([]byte(js), &af); err != nil {
		t.Fatal(err)
	}
	return af
}

// PEP 440 orders what SemVer cannot: a pre-release of the introduced
// version is before the range, a post-release of the fixed one after it,
// and an epoch outranks every release.
func TestPyPIVersionsOutsideTheRangeInPEP440Order(t *testing.T) {
	af := affected(t, `{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}`)
	for _, v := range []string{"2.31.0", "2.31.0.post1", "2.31", "2.2.9", "2.3.0rc1", "2.3.0.dev0", "1!1.0"} {
		ok, err := af.Evaluate(v)
		if ok || err != nil {
			t.Errorf("%s: affected %v, error %v; want unaffected by [2.3.0, 2.31.0)", v, ok, err)
		}
	}
	for _, v := range []string{"2.3", "2.3.0", "2.30.0+local.1", "2.31.0b2", "2.31.0a1.dev3"} {
		if ok, err := af.Evaluate(v); !ok || err != nil {
			t.Errorf("%s: affected %v, error %v; want affected", v, ok, err)
		}
	}
	// last_affected includes its own post-release's base, not beyond.
	af = affected(t, `{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"last_affected":"1.0.post1"}]}]}`)
	if !af.Affects("1.0.post1") || !af.Affects("1.0") || af.Affects("1.0.post2") || af.Affects("1.0.1") {
		t.Error("last_affected 1.0.post1 not honoured in PEP 440 order")
	}
}

// A version, or a range bound, that cannot be ordered is not "unaffected":
// Evaluate says it could not compare, for every ecosystem.
func TestVersionThatCannotBeOrderedIsAnErrorNotUnaffected(t *testing.T) {
	cases := []struct{ af, version, want string }{
		{`{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31.0"}]}]}`, "2.30.0-custom-build!", `"2.30.0-custom-build!" is not a PEP 440 version`},
		{`{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}`, "github:lodash/lodash#4.17.20", `is not a SemVer version`},
		{`{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}`, "1.2.3.4", `"1.2.3.4" is not a SemVer version`},
		{`{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.x-broken"}]}]}`, "v1.0.0", `range bound "1.2.x-broken" is not a SemVer version`},
		{`{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"not-pep-440"},{"fixed":"2"}]}]}`, "1.5", `range bound "not-pep-440"`},
	}
	for _, c := range cases {
		af := affected(t, c.af)
		ok, err := af.Evaluate(c.version)
		if ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: affected %v, error %v; want not affected with an error containing %q", c.version, ok, err, c.want)
		}
	}
	// An explicit list still matches a version no order reads, and a
	// GIT-only record has no range to compare with.
	af := affected(t, `{"package":{"ecosystem":"npm","name":"x"},"versions":["weird-1"],"ranges":[{"type":"GIT","events":[{"introduced":"0"},{"fixed":"abc123"}]}]}`)
	if ok, err := af.Evaluate("weird-1"); !ok || err != nil {
		t.Errorf("listed version: %v %v", ok, err)
	}
	if ok, err := af.Evaluate("weird-2"); ok || err != nil {
		t.Errorf("GIT range: %v %v, want unaffected without error", ok, err)
	}
	// One bad range does not hide another that matches.
	af = affected(t, `{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"bad"}]},{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"2.0.0"}]}]}`)
	if ok, err := af.Evaluate("1.5.0"); !ok || err != nil {
		t.Errorf("second range: %v %v, want affected", ok, err)
	}
}

// Go module versions (v prefix, +incompatible, pseudo-versions) and npm
// pre-releases keep their SemVer order.
func TestGoAndNPMVersionsKeepSemVerOrder(t *testing.T) {
	goText := affected(t, `{"package":{"ecosystem":"Go","name":"golang.org/x/text"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.8"}]}]}`)
	docker := affected(t, `{"package":{"ecosystem":"Go","name":"github.com/docker/docker"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"20.10.11"}]}]}`)
	npm := affected(t, `{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0-rc.1"},{"fixed":"2.0.1"}]}]}`)
	cases := []struct {
		af      review.Affected
		version string
		want    bool
	}{
		{goText, "v0.3.7", true},
		{goText, "v0.3.8", false},
		{goText, "v0.0.0-20191204190536-9bdfabe68543", true},
		{goText, "v0.3.8-0.20211004125949-5bd84dd9b33b", true}, // pseudo-version before v0.3.8
		{goText, "v0.3.9-0.20220101000000-abcdefabcdef", false},
		{docker, "v20.10.10+incompatible", true},
		{docker, "v20.10.11+incompatible", false},
		{npm, "2.0.0-beta.9", false},
		{npm, "2.0.0-rc.1", true},
		{npm, "2.0.0-rc.10", true},
		{npm, "2.0.0", true},
		{npm, "2.0.1-alpha", true},
		{npm, "2.0.1", false},
	}
	for _, c := range cases {
		if ok, err := c.af.Evaluate(c.version); ok != c.want || err != nil {
			t.Errorf("%s %s: affected %v, error %v; want %v", c.af.Package.Name, c.version, ok, err, c.want)
		}
	}
}

// End to end: a pinned PyPI post-release inside a range is refused, and a
// pin no order reads is a medium finding naming the advisory, not a pass.
func TestReviewReportsPyPIPostReleaseAndAnUncomparablePin(t *testing.T) {
	dir := t.TempDir()
	rec := `{"id":"PYSEC-TEST-1","summary":"leaks headers","database_specific":{"severity":"HIGH"},
"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "PYSEC-TEST-1.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	files := cleanFiles()
	files["requirements.txt"] = file{content: "requests==2.30.0.post1\n"}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir, Stage: "public"})
	fs := mustRejectFor(t, rep, review.CheckVulnerabilities)
	if len(fs) != 1 || fs[0].Rule != "PYSEC-TEST-1" || fs[0].Severity != review.High {
		t.Fatalf("findings %+v: want PYSEC-TEST-1 high", fs)
	}
	files["requirements.txt"] = file{content: "requests===2.30.0-vendor\n"}
	rep = check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir, Stage: "public"})
	fs = mustRejectFor(t, rep, review.CheckVulnerabilities)
	if len(fs) != 1 || fs[0].Rule != "PYSEC-TEST-1" || fs[0].Severity != review.Medium ||
		!strings.Contains(fs[0].Message, "cannot compare PyPI requests 2.30.0-vendor with advisory PYSEC-TEST-1's range") {
		t.Fatalf("findings %+v: want one medium 'cannot compare' finding", fs)
	}
	// The fixed version passes.
	files["requirements.txt"] = file{content: "requests==2.31.0\n"}
	rep = check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: dir, Stage: "public"})
	if c := rep.Check(review.CheckVulnerabilities); c.Status != review.Passed {
		t.Fatalf("2.31.0 flagged:\n%s", text(rep))
	}
}
