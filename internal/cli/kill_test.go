package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/connectsoft/marketplace/testenv"
)

// TestIndexSurvivesKill9DuringIngest pushes while the index ingests, kills
// it with SIGKILL half-way, restarts it, and expects every version once:
// what the webhook lost, the crawl at start recovers; nothing is stored twice.
func TestIndexSurvivesKill9DuringIngest(t *testing.T) {
	bin := mktBinary(t)
	addr := freePort(t)
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL:     "http://" + addr + "/api/v1/events/registry",
		NotifyHeaders: http.Header{"Authorization": {"Bearer kill-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "index.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf("listen: %s\nstore: sqlite://index.db\nwebhookSecret: kill-secret\nsources:\n  - {name: k, registry: %q, plainHTTP: true, repositories: [\"acme/**\"], tenant: acme, visibility: public, interval: 1h}\n", addr, reg.Host)), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "index", "serve", "--config", config)
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the index process to listen", func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
		return cmd
	}
	idx := start()
	const n = 20
	ext := filepath.Join(t.TempDir(), "e")
	for i := 0; i < n; i++ {
		os.RemoveAll(ext)
		mustMkt(t, "init", ext, "--kind", "Module", "--name", fmt.Sprintf("acme/k%02d", i))
		mustMkt(t, "push", "--plain-http", reg.Ref(fmt.Sprintf("acme/k%02d", i)), ext)
		if i == n/2 {
			idx.Process.Signal(syscall.SIGKILL)
			idx.Wait()
		}
	}
	idx = start()
	defer func() { idx.Process.Signal(syscall.SIGTERM); idx.Wait() }()
	var total int
	waitFor(t, "every pushed version to be indexed after the restart", func() bool {
		resp, err := http.Get("http://" + addr + "/api/v1/extensions?q=acme")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct{ Total int }
		json.NewDecoder(resp.Body).Decode(&r)
		total = r.Total
		return total == n
	})
	for i := 0; i < n; i++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/extensions/acme/k%02d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Versions []json.RawMessage }
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if len(d.Versions) != 1 {
			t.Fatalf("acme/k%02d has %d versions after the restart", i, len(d.Versions))
		}
	}

}
