package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestInstallIndexReportsUsage: mkt install --index with a token reports
// each install to the index for the token's tenant, which mkt usage then
// shows; --no-usage-report and a missing token report nothing.
func TestInstallIndexReportsUsage(t *testing.T) {
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, plain)
	signer, _, _ := fixture.KeyPair(t, dir, "pub")
	idx := fixture.NewIndex(t, plain, pub.Remote)
	ref := pub.Publish("cliusage", fixture.Ext{Name: "acme/meter", Version: "1.0.0"})
	pub.Sign(ref, signer)
	idx.Ingest(ref)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: all
    match: {repositories: ["%s/cliusage/**"]}
    signatures: {trustRoots: [publishers]}
`, plain.Host)), 0o644)
	tok, err := index.CreateToken(context.Background(), idx.Store, "globex", []string{"reader"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	install := func(extra ...string) mktRun {
		args := append([]string{"install", "--plain-http", "acme/meter", "--index", idx.URL, "--policy", pol, "--factory-version", "2.4.0",
			"-o", filepath.Join(t.TempDir(), "ext"), "--lockfile", filepath.Join(t.TempDir(), "extensions.lock")}, extra...)
		return mustMkt(t, args...)
	}
	installs := func() (n int64) {
		t.Setenv("MKT_INDEX_TOKEN", tok.Secret)
		r := mustMkt(t, "usage", "--index", idx.URL, "--format", "json")
		var page struct {
			Rows []struct {
				Tenant, Name, Version string
				Installs              int64
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
			t.Fatalf("usage --format json: %v\n%s", err, r.stdout)
		}
		for _, row := range page.Rows {
			if row.Tenant != "globex" || row.Name != "acme/meter" || row.Version != "1.0.0" {
				t.Fatalf("usage row %+v", row)
			}
			n += row.Installs
		}
		return n
	}

	t.Setenv("MKT_INDEX_TOKEN", tok.Secret)
	r := install("--format", "json")
	var doc map[string]any
	json.Unmarshal([]byte(r.stdout), &doc)
	if u, _ := doc["usage"].(map[string]any); u["accepted"] != 1.0 {
		t.Fatalf("install's report: %v", doc["usage"])
	}
	if n := installs(); n != 1 {
		t.Fatalf("%d installs counted after one install", n)
	}
	install("--no-usage-report")
	t.Setenv("MKT_INDEX_TOKEN", "")
	install()
	if n := installs(); n != 1 {
		t.Fatalf("%d installs counted after installs without a report", n)
	}
}

// goldenUsage records two installs of gold/crm@0.1.0 by tenant globex in
// November 2026 and returns a publisher token of the fixture index's tenant,
// which owns gold/crm.
func goldenUsage(t *testing.T, st store.Store) string {
	t.Helper()
	at := time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)
	var events []*store.UsageEvent
	for i, day := range []int{0, 3} {
		events = append(events, &store.UsageEvent{Source: "urn:golden", ID: fmt.Sprint("g", i), At: at.AddDate(0, 0, day), Tenant: "globex",
			Owner: "fixture", Publisher: "gold", Name: "gold/crm", Version: "0.1.0", Digest: "sha256:" + strings.Repeat("0", 64),
			Type: store.UsageInstall, Quantity: 1})
	}
	if _, err := st.RecordUsage(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	tok, err := index.CreateToken(context.Background(), st, "fixture", []string{"publisher"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

// TestUsageTextOutput: mkt usage's table, and its CSV as the index sends
// it, equal their golden files (-update rewrites them).
func TestUsageTextOutput(t *testing.T) {
	idx := fixture.NewIndex(t, plain, remote.Options{PlainHTTP: true})
	t.Setenv("MKT_INDEX_TOKEN", goldenUsage(t, idx.Store))
	for name, args := range map[string][]string{
		"mkt-usage.ok.txt":  {"usage", "--index", idx.URL, "--from", "2026-11-01", "--to", "2026-12-01"},
		"mkt-usage.csv.txt": {"usage", "--index", idx.URL, "--from", "2026-11", "--granularity", "month", "--csv"},
	} {
		r := mustMkt(t, args...)
		got := r.stdout + "--- stderr\n" + r.stderr
		path := filepath.Join("testdata", "golden", name)
		if *update {
			os.WriteFile(path, []byte(got), 0o644)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil || string(want) != got {
			t.Errorf("%s differs (-update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
		}
	}
	if r := mkt(t, "usage", "--index", idx.URL, "--csv", "--format", "json"); r.code != exitUsage {
		t.Fatalf("--csv with --format json: %+v", r)
	}
}
