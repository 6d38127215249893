package review_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/review"
	"github.com/connectsoft/marketplace/signing"
)

func TestCleanExtensionPasses(t *testing.T) {
	dir := writeExt(t, descriptor("acme/crm", "  entrypoint: connector/main.yaml\n"), cleanFiles())
	rep := check(t, dir, review.Options{OSVDir: "testdata/osv"})
	if !rep.Approved() || rep.Blocking != 0 {
		t.Fatalf("a clean extension was rejected:\n%s", text(rep))
	}
	for _, c := range rep.Checks {
		want := review.Passed
		switch c.Name {
		case review.CheckCompatibility:
			want = review.Skipped // a directory has no attestations yet
		}
		if c.Status != want {
			t.Errorf("check %s: %s (%s), want %s", c.Name, c.Status, c.Summary, want)
		}
	}
	if rep.Files != 4 {
		t.Errorf("read %d files, want 4 (extension.yaml, main.yaml, README.md, go.mod)", rep.Files)
	}
	var bom map[string]any
	if err := json.Unmarshal(rep.SBOM(), &bom); err != nil || bom["bomFormat"] != "CycloneDX" {
		t.Fatalf("SBOM is not CycloneDX JSON: %v\n%s", err, rep.SBOM())
	}
	if !strings.Contains(string(rep.SBOM()), "pkg:golang/golang.org/x/text@v0.14.0") {
		t.Errorf("the SBOM lacks go.mod's requirement:\n%s", rep.SBOM())
	}
	pred, err := rep.PredicateJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.ValidatePredicate(signing.ReviewV1, pred); err != nil {
		t.Fatalf("the predicate fails the review schema: %v", err)
	}
}

func TestPrivateKeyInContentIsRefused(t *testing.T) {
	files := cleanFiles()
	files["config/deploy.pem"] = file{content: privateKeyPEM(t)}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{})
	fs := mustRejectFor(t, rep, review.CheckSecrets)
	if fs[0].File != "config/deploy.pem" || fs[0].Line != 1 || fs[0].Severity != review.Critical || !strings.Contains(fs[0].Rule, "private-key") {
		t.Fatalf("finding %+v: want a critical private-key finding at config/deploy.pem:1", fs[0])
	}
	if strings.Contains(text(rep), "PRIVATE KEY-----\nM") || strings.Contains(string(mustJSON(t, rep)), "MHc") {
		t.Fatal("the report repeats the secret")
	}
}

func TestAWSKeyInContentIsRefusedAtItsLine(t *testing.T) {
	files := cleanFiles()
	files["connector/settings.py"] = file{content: "import os\n\nREGION = 'eu-west-1'\nAWS_ACCESS_KEY_ID = '" + awsKeyID() + "'\n"}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{})
	fs := mustRejectFor(t, rep, review.CheckSecrets)
	if fs[0].File != "connector/settings.py" || fs[0].Line != 4 {
		t.Fatalf("finding at %s, want connector/settings.py:4", fs[0].Location())
	}
	if strings.Contains(text(rep), awsKeyID()) {
		t.Fatal("the report repeats the key")
	}
}

// A secret past the first piece of a large text file, and one straddling
// two pieces, are found at their lines: padding a file does not hide one.
func TestSecretDeepInALargeFileIsFound(t *testing.T) {
	var b strings.Builder
	line := strings.Repeat("x", 99) + "\n"
	for b.Len() < 9<<20 {
		b.WriteString(line)
	}
	pre := strings.Count(b.String(), "\n")
	b.WriteString(privateKeyPEM(t))
	files := cleanFiles()
	files["data/fixtures.txt"] = file{content: b.String()}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{})
	fs := mustRejectFor(t, rep, review.CheckSecrets)
	if len(fs) != 1 || fs[0].Line != pre+1 {
		t.Fatalf("findings %+v: want one at line %d", fs, pre+1)
	}
}

func TestExecutableNotCoveredByPermissionsIsRefused(t *testing.T) {
	elf := "\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 56)
	cases := []struct {
		name, path, perms string
		f                 file
		blocked           bool
	}{
		{"ELF binary", "bin/tool", "", file{content: elf}, true},
		{"ELF binary with process.exec", "bin/tool", "  permissions: [process.exec]\n", file{content: elf}, false},
		{"shebang script", "scripts/setup", "", file{content: "#!/bin/sh\necho hi\n"}, true},
		{"powershell by extension", "install.ps1", "  permissions: [network]\n", file{content: "Write-Host hi\n"}, true},
		{"script with shell.exec", "install.sh", "  permissions: [shell.exec]\n", file{content: "echo hi\n"}, false},
		{"executable bit alone", "run", "", file{content: "echo hi\n", mode: 0o755}, true},
		{"ELF binary with shell.exec only", "bin/tool", "  permissions: [shell.exec]\n", file{content: elf}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := cleanFiles()
			files[c.path] = c.f
			rep := check(t, writeExt(t, descriptor("acme/crm", c.perms), files), review.Options{})
			if !c.blocked {
				if !rep.Approved() {
					t.Fatalf("covered executable rejected:\n%s", text(rep))
				}
				if len(findings(rep, review.CheckExecutables, review.Info)) != 1 {
					t.Fatalf("the covered executable is not listed for the reviewer:\n%s", text(rep))
				}
				return
			}
			fs := mustRejectFor(t, rep, review.CheckExecutables)
			if fs[0].File != c.path {
				t.Fatalf("finding at %q, want %q", fs[0].File, c.path)
			}
		})
	}
}

func TestVulnerableDependencyIsRefused(t *testing.T) {
	cases := []struct {
		name, path, content, id string
		sev                     review.Severity
	}{
		{"go.mod", "go.mod", "module example.com/crm\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.7\n", "GO-2022-1059", review.High},
		{"package-lock.json", "web/package-lock.json", `{"lockfileVersion":3,"packages":{"":{"name":"crm"},"node_modules/lodash":{"version":"4.17.20"}}}`, "GHSA-35jh-r3h4-6jhm", review.High},
		{"requirements.txt", "tools/requirements.txt", "# tools\nRequests==2.30.0  # pinned\nurllib3>=2\n", "PYSEC-2023-74", review.Medium},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := cleanFiles()
			files[c.path] = file{content: c.content}
			o := review.Options{OSVDir: "testdata/osv", Stage: "public"} // public blocks medium
			rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), o)
			fs := mustRejectFor(t, rep, review.CheckVulnerabilities)
			if len(fs) != 1 || fs[0].Rule != c.id || fs[0].File != c.path || fs[0].Severity != c.sev {
				t.Fatalf("findings %+v: want one %s (%s) in %s", fs, c.id, c.sev, c.path)
			}
		})
	}
	// Fixed versions and a withdrawn advisory match nothing.
	files := cleanFiles()
	files["go.mod"] = file{content: "module example.com/crm\n\nrequire golang.org/x/text v0.3.8\n"}
	files["package-lock.json"] = file{content: `{"packages":{"node_modules/lodash":{"version":"4.17.21"}}}`}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{OSVDir: "testdata/osv"})
	if c := rep.Check(review.CheckVulnerabilities); c.Status != review.Passed {
		t.Fatalf("fixed versions flagged:\n%s", text(rep))
	}
}

func TestVulnerabilityCheckIsSkippedWithoutADatabaseNotPassed(t *testing.T) {
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), cleanFiles()), review.Options{})
	c := rep.Check(review.CheckVulnerabilities)
	if c.Status != review.Skipped || !strings.Contains(c.Summary, "--osv-db") {
		t.Fatalf("vulnerabilities: %+v, want skipped naming --osv-db", c)
	}
	for _, pc := range rep.Predicate().Checks {
		if pc.Name == review.CheckVulnerabilities && pc.Passed {
			t.Fatal("the predicate says a skipped check passed")
		}
	}
}

func TestDamagedOSVDatabaseIsNotAnEmptyOne(t *testing.T) {
	db := t.TempDir()
	os.WriteFile(filepath.Join(db, "GO-1.json"), []byte(`{"id": "GO-1", "affected": [`), 0o644)
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), cleanFiles()), review.Options{OSVDir: db})
	mustRejectFor(t, rep, review.CheckVulnerabilities)
}

func TestLicence(t *testing.T) {
	w := t.TempDir()
	pol := filepath.Join(w, "policy.yaml")
	os.WriteFile(pol, []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
rules:
  - name: public
    match: {repositories: ["**"]}
    licenses: {allow: [Apache-2.0, MIT], deny: [GPL-3.0-only]}
`), 0o644)
	p := loadPolicy(t, pol)
	cases := []struct {
		name, license string
		approved      bool
	}{
		{"allowed", "Apache-2.0", true},
		{"allowed choice", "MIT OR GPL-3.0-only", true},
		{"denied", "GPL-3.0-only", false},
		{"not allowed", "BSD-3-Clause", false},
		{"not SPDX", "Apache 2", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			desc := strings.Replace(descriptor("acme/crm", ""), "license: Apache-2.0", "license: "+c.license, 1)
			rep := check(t, writeExt(t, desc, cleanFiles()), review.Options{Policy: p})
			if c.approved {
				if !rep.Approved() {
					t.Fatalf("rejected:\n%s", text(rep))
				}
				return
			}
			fs := mustRejectFor(t, rep, review.CheckLicense)
			if fs[0].File != "extension.yaml" {
				t.Fatalf("finding at %q, want extension.yaml", fs[0].File)
			}
			if d := rep.Check(review.CheckDescriptor); d.Status != review.Passed {
				t.Fatalf("a licence problem is filed under descriptor too: %+v", d)
			}
		})
	}
}

func TestLimitsAreEnforcedAndOverridable(t *testing.T) {
	files := cleanFiles()
	files["data/big.bin"] = file{content: strings.Repeat("\x00", 2<<20)}
	dir := writeExt(t, descriptor("acme/crm", ""), files)
	rep := check(t, dir, review.Options{Limits: review.Limits{MaxFileSize: 1 << 20, MaxFiles: 3}})
	fs := mustRejectFor(t, rep, review.CheckLimits)
	if len(fs) != 2 {
		t.Fatalf("findings %+v: want the file size and the file count", fs)
	}
	if rep := check(t, dir, review.Options{}); !rep.Approved() {
		t.Fatalf("the defaults refuse 2 MiB:\n%s", text(rep))
	}
}

func TestBrokenDescriptorIsReportedNotAnError(t *testing.T) {
	dir := writeExt(t, descriptor("acme/crm", "  entrypoint: connector/missing.yaml\n"), cleanFiles())
	rep := check(t, dir, review.Options{})
	fs := mustRejectFor(t, rep, review.CheckDescriptor)
	if !strings.Contains(fs[0].Message, "entrypoint") {
		t.Fatalf("finding %+v: want the missing entrypoint", fs[0])
	}
	if c := rep.Check(review.CheckSecrets); c.Status != review.Skipped {
		t.Fatalf("secrets %+v: want skipped, nothing was read", c)
	}
	dir = writeExt(t, "apiVersion: [", nil)
	rep = check(t, dir, review.Options{})
	mustRejectFor(t, rep, review.CheckDescriptor)
}

func TestStageSetsWhatBlocks(t *testing.T) {
	dir := writeExt(t, descriptor("acme/crm", ""), cleanFiles())
	if _, err := review.CheckDir(context.Background(), dir, review.Options{Stage: "galaxy"}); err == nil {
		t.Fatal("an unknown stage was accepted")
	}
	rep := check(t, dir, review.Options{Stage: "public"})
	if rep.BlockAt != review.Medium || rep.Stage != "public" {
		t.Fatalf("public blocks at %s", rep.BlockAt)
	}
	if p := rep.Predicate(); p.Level != "public" || p.Reviewer != "pipeline" {
		t.Fatalf("predicate %+v", p)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
