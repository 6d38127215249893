package review_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/connectsoft/marketplace/review"
)

// FuzzParseAdvisory holds the OSV record parser and the range matcher to
// never panic on any record: an offline database is input from outside.
func FuzzParseAdvisory(f *testing.F) {
	files, _ := filepath.Glob("testdata/osv/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"last_affected":"1.2.0"},{"introduced":"2.0.0-rc.1"},{"limit":"3"}]}]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}]}`))
	f.Add([]byte(`{"id":"P","affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0.0rc1"},{"fixed":"2.0.0.post2"},{"introduced":"3"},{"last_affected":"not pep 440"},{"limit":"*"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := review.ParseAdvisory(data)
		if err != nil {
			return
		}
		sev := a.AdvisorySeverity()
		if _, err := review.ParseSeverity(string(sev)); err != nil {
			t.Fatalf("severity %q is not one of the predicate's", sev)
		}
		for _, af := range a.Affected {
			for _, v := range []string{"0.0.1", "1.0.0", "1.2.0", "v2.0.0", "2.0.0-rc.1", "2.0.0.post1", "1!2.0rc1.dev3+local", "v0.0.0-20191204190536-9bdfabe68543", "not-a-version", ""} {
				ok, err := af.Evaluate(v)
				if ok && err != nil {
					t.Fatalf("%s: affected and an error %v: a verdict is one or the other", v, err)
				}
				if ok != af.Affects(v) {
					t.Fatalf("%s: Affects disagrees with Evaluate", v)
				}
			}
		}
	})
}

// FuzzParseManifest holds every dependency manifest parser to never
// panic, and to name only packages with a name and a version.
func FuzzParseManifest(f *testing.F) {
	f.Add("go.mod", []byte("module x\n\ngo 1.22\n\nrequire (\n\tgolang.org/x/text v0.3.7\n\tgithub.com/a/b v1.0.0 // indirect\n)\nreplace a => ../a\n"))
	f.Add("package.json", []byte(`{"dependencies":{"lodash":"4.17.20","left-pad":"^1.0.0","@scope/pkg":"1.2.3"}}`))
	f.Add("package-lock.json", []byte(`{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}`))
	f.Add("package-lock.json", []byte(`{"packages":{"":{},"node_modules/a/node_modules/b":{"version":"1.0.0"}}}`))
	f.Add("requirements.txt", []byte("-r base.txt\nrequests[socks]==2.30.0 ; python_version > '3' \\\n  --hash=sha256:abc\nflask>=2\n"))
	parsers := map[string]func([]byte) ([]review.Package, error){
		"go.mod": review.ParseGoMod, "package.json": review.ParsePackageJSON,
		"package-lock.json": review.ParsePackageLock, "requirements.txt": review.ParseRequirements,
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		parse, ok := parsers[name]
		if !ok {
			return
		}
		pkgs, err := parse(data)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL() == "" {
				t.Fatalf("%s named a package without a name, a version or a purl: %+v", name, p)
			}
		}
	})
}
