package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/testenv"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestIndexServeIngestsPushesAndSearchRespectsTenancy(t *testing.T) {
	addr := freePort(t)
	t.Setenv("MKT_TEST_HOOK", "hook-secret")
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL:     "http://" + addr + "/api/v1/events/registry",
		NotifyHeaders: http.Header{"Authorization": {"Bearer hook-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "index.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`listen: %s
store: sqlite://index.db
webhookSecret: ${MKT_TEST_HOOK}
sources:
  - name: acme
    registry: %s
    plainHTTP: true
    repositories: ["acme/**"]
    tenant: acme
    visibility: private
`, addr, reg.Host)), 0o644)

	r := mustMkt(t, "index", "token", "create", "--config", config, "--tenant", "acme", "--roles", "reader")
	token := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(token, "mkt_") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("token create printed %q", r.stdout)
	}
	if r := mkt(t, "index", "token", "create", "--config", config, "--tenant", "acme", "--roles", "owner"); r.code != 2 {
		t.Fatalf("unknown role: %+v", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		var out, errb bytes.Buffer
		done <- run(ctx, []string{"index", "serve", "--config", config}, &out, &errb)
	}()
	url := "http://" + addr
	waitFor(t, "the index to listen", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	ext := filepath.Join(t.TempDir(), "crm")
	mustMkt(t, "init", ext, "--kind", "Connector", "--name", "acme/crm")
	mustMkt(t, "push", "--plain-http", reg.Ref("acme/crm"), ext)
	t.Setenv("MKT_INDEX_TOKEN", token)
	waitFor(t, "the push to be searchable", func() bool {
		return strings.Contains(mkt(t, "search", "crm", "--index", url).stdout, "acme/crm")
	})
	// The index resolves (for the token's tenant); anonymous, it is not found.
	if r := mustMkt(t, "resolve", "--plain-http", "acme/crm", "--index", url, "--factory-version", "2.4.0"); !strings.Contains(r.stdout, reg.Ref("acme/crm@sha256:")) {
		t.Fatalf("resolve --index: %s", r.stdout)
	}
	// install --index: the index chooses, the registry serves, the local
	// policy verifies again: unsigned is refused, signed installs.
	t.Setenv("COSIGN_PASSWORD", "pw")
	key := filepath.Join(dir, "acme")
	mustMkt(t, "key", "generate", "--output-prefix", key)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\ntrustRoots:\n  - {name: acme, keys: [acme.pub]}\nrules:\n  - name: acme\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [acme]}\n"), 0o644)
	inst := filepath.Join(t.TempDir(), "ext")
	lock := filepath.Join(t.TempDir(), "lock.json")
	if r := mkt(t, "install", "--plain-http", "acme/crm", "--index", url, "--policy", pol, "--factory-version", "2.4.0", "-o", inst, "--lockfile", lock); r.code != 1 || !strings.Contains(r.stderr, "the client refused what the index offered before: acme/crm@0.1.0 (signature") {
		t.Fatalf("install --index of an unsigned choice: %+v", r)
	}
	mustMkt(t, "sign", "--plain-http", reg.Ref("acme/crm:0.1.0"), "--key", key+".key")
	mustMkt(t, "install", "--plain-http", "acme/crm", "--index", url, "--policy", pol, "--factory-version", "2.4.0", "-o", inst, "--lockfile", lock)
	if _, err := os.Stat(filepath.Join(inst, "acme", "crm", "extension.yaml")); err != nil {
		t.Fatalf("install --index: %v", err)
	}
	t.Setenv("MKT_INDEX_TOKEN", "")
	if r := mustMkt(t, "search", "crm", "--index", url); strings.Contains(r.stdout, "acme/crm") {
		t.Fatalf("anonymous search shows a private extension: %s", r.stdout)
	}
	if r := mkt(t, "resolve", "--plain-http", "acme/crm", "--index", url, "--factory-version", "2.4.0"); r.code != 1 || !strings.Contains(r.stderr, "no versions published") {
		t.Fatalf("anonymous resolve of a private extension: %+v", r)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("index serve exited %d", code)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
