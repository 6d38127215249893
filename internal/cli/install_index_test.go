package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestInstallIndexChecksTheIndexAnswer runs mkt against a real index (no
// policy of its own, so it offers the newest) over a real registry: acme/lib
// 1.2.0 is yanked by its publisher, 1.1.0 is GPL-3.0-only, 1.0.0 is what the
// local policy allows.
func TestInstallIndexChecksTheIndexAnswer(t *testing.T) {
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, plain)
	signer, _, _ := fixture.KeyPair(t, dir, "pub")
	idx := fixture.NewIndex(t, plain, pub.Remote)
	refs := map[string]string{}
	for _, e := range []fixture.Ext{
		{Name: "acme/lib", Version: "1.0.0"},
		{Name: "acme/lib", Version: "1.1.0", License: "GPL-3.0-only"},
		{Name: "acme/lib", Version: "1.2.0"},
		{Name: "nopol/thing", Version: "0.1.0"},
	} {
		ref := pub.Publish("cliidx", e)
		pub.Sign(ref, signer)
		refs[e.Name+"@"+e.Version] = ref
	}
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	pub.Attest(refs["acme/lib@1.2.0"], signer, "lifecycle", `{"status":"yanked","reason":"CVE-2026-0002","time":"`+at+`"}`)
	for _, ref := range refs {
		idx.Ingest(ref)
	}
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: all
    match: {repositories: ["%s/cliidx/**"]}
    signatures: {trustRoots: [publishers]}
    licenses: {allow: [MIT]}
`, plain.Host)), 0o644)
	install := func(indexURL string, extra ...string) (mktRun, string, string) {
		out := filepath.Join(t.TempDir(), "ext")
		lock := filepath.Join(t.TempDir(), "extensions.lock")
		args := append([]string{"install", "--plain-http", "--index", indexURL, "--policy", pol, "--factory-version", "2.4.0", "-o", out, "--lockfile", lock}, extra...)
		return mkt(t, args...), out, lock
	}

	t.Run("yanked and denied versions are passed over with the reason", func(t *testing.T) {
		r, out, _ := install(idx.URL, "acme/lib")
		if r.code != 0 || !strings.Contains(r.stdout, "acme/lib") || !strings.Contains(r.stdout, "1.0.0") {
			t.Fatalf("install: %+v", r)
		}
		for _, want := range []string{
			"warning: acme/lib: passed over 1.2.0: offered by the index, refused here: lifecycle: yanked: CVE-2026-0002",
			"warning: acme/lib: passed over 1.1.0: offered by the index, refused here: license",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("install's stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(out, "acme/lib/README.md")); !strings.Contains(string(b), "acme/lib 1.0.0") {
			t.Fatalf("installed %q, want 1.0.0", b)
		}
		r = mustMkt(t, "resolve", "--plain-http", "acme/lib", "--index", idx.URL, "--policy", pol, "--factory-version", "2.4.0", "--explain")
		if !strings.Contains(r.stdout, refs["acme/lib@1.0.0"]) || !strings.Contains(r.stdout, "passed over 1.2.0: offered by the index, refused here: lifecycle: yanked") {
			t.Fatalf("resolve --explain: %s", r.stdout)
		}
	})

	t.Run("a yanked version installs only when the lockfile pins it", func(t *testing.T) {
		if r, _, _ := install(idx.URL, "acme/lib@1.2.0"); r.code != 1 || !strings.Contains(r.stderr, "acme/lib@1.2.0 (lifecycle: yanked: CVE-2026-0002") {
			t.Fatalf("install of the yanked version the index chose: %+v", r)
		}
		yanked := refs["acme/lib@1.2.0"]
		out := filepath.Join(t.TempDir(), "ext")
		lock := filepath.Join(t.TempDir(), "extensions.lock")
		b, _ := json.Marshal(map[string]any{"lockfileVersion": 1, "extensions": []map[string]string{{"name": "acme/lib", "version": "1.2.0", "reference": yanked, "digest": yanked[strings.Index(yanked, "@")+1:]}}})
		os.WriteFile(lock, b, 0o644)
		mustMkt(t, "install", "--plain-http", "--locked", "--registry", plain.Host+"/cliidx", "--policy", pol, "--factory-version", "2.4.0", "-o", out, "--lockfile", lock)
		if b, _ := os.ReadFile(filepath.Join(out, "acme/lib/README.md")); !strings.Contains(string(b), "acme/lib 1.2.0") {
			t.Fatalf("locked install wrote %q, want the pinned 1.2.0", b)
		}
	})

	t.Run("an index that swaps the artifact is refused", func(t *testing.T) {
		thing := refs["nopol/thing@0.1.0"]
		repo, digest, _ := strings.Cut(thing, "@")
		liar := fixture.LyingIndex(t, idx.Handler, func(s map[string]any) {
			s["repository"], s["digest"], s["reference"] = repo, digest, thing
		})
		r, out, lock := install(liar, "acme/lib")
		if want := "the index said acme/lib@1.2.0 is " + thing + ", but that artifact is nopol/thing@0.1.0"; r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("install through a lying index: %+v\nwant stderr to say %q", r, want)
		}
		for _, p := range []string{out, lock} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("a refused answer left %s", p)
			}
		}
	})
}
