package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mkt dev up verifies with a dev key and policy it prints: a version
// signed with that key shows signed and policy passed, an unsigned one
// neither, from the first try.
func TestDevUpShowsHonestBadgesWithItsDevKey(t *testing.T) {
	devDir := t.TempDir()
	addr := filepath.Join(t.TempDir(), "addr")
	idx := filepath.Join(t.TempDir(), "index")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"dev", "up", "--listen", "127.0.0.1:0", "--index-listen", "127.0.0.1:0", "--addr-file", addr,
			"--index-addr-file", idx, "--dev-dir", devDir}, &out, &errb)
	}()
	var host, url string
	waitFor(t, "dev up to write its addresses", func() bool {
		select {
		case code := <-done:
			t.Fatalf("dev up exited %d before it listened:\n%s", code, errb.String())
		default:
		}
		h, _ := os.ReadFile(addr)
		u, _ := os.ReadFile(idx)
		host, url = strings.TrimSpace(string(h)), strings.TrimSpace(string(u))
		return host != "" && url != ""
	})
	key := filepath.Join(devDir, "dev.key")
	for _, f := range []string{key, filepath.Join(devDir, "dev.pub"), filepath.Join(devDir, "dev-policy.yaml")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("dev up did not write %s: %v", f, err)
		}
	}
	for _, name := range []string{"acme/signedone", "acme/unsignedone"} {
		dir := filepath.Join(t.TempDir(), "m")
		mustMkt(t, "init", dir, "--kind", "Module", "--name", name)
		mustMkt(t, "push", "--plain-http", host+"/"+name, dir)
	}
	t.Setenv("COSIGN_PASSWORD", "")
	mustMkt(t, "sign", "--plain-http", host+"/acme/signedone:0.1.0", "--key", key)
	type item struct {
		Name, Verdict string
		Signed        bool
	}
	find := func(q string) *item {
		resp, err := http.Get(url + "/api/v1/extensions?q=" + q)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct{ Items []item }
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Items) != 1 {
			return nil
		}
		return &r.Items[0]
	}
	waitFor(t, "the signed version to show signed and policy passed", func() bool {
		it := find("signedone")
		return it != nil && it.Signed && it.Verdict == "passed"
	})
	waitFor(t, "the unsigned version to be listed", func() bool { return find("unsignedone") != nil })
	if it := find("unsignedone"); it.Signed || it.Verdict != "denied" {
		t.Fatalf("the unsigned version shows %+v", it)
	}
	resp, err := http.Get(url + "/extensions/acme/signedone")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "policy passed") || !strings.Contains(string(page), "--index "+url) {
		t.Fatalf("the page of the signed version:\n%s", page)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev up exited %d: %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev up did not stop")
	}
	for _, want := range []string{"dev signing key: " + key, "dev policy (enforce", "COSIGN_PASSWORD= mkt sign --plain-http " + host} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev up's output lacks %q:\n%s", want, out.String())
		}
	}
}
