package testenv_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/testenv"
	"oras.land/oras-go/v2"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// TestDistributionProcessNotifiesAndDiesOnClose runs the pinned stock
// registry binary as its own process: it serves, posts its notifications
// with the configured header, and is gone once closed.
func TestDistributionProcessNotifiesAndDiesOnClose(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	pushed := make(chan struct{}, 16)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var env struct {
			Events []struct {
				Action string
				Target struct{ Repository, Tag string }
			}
		}
		json.Unmarshal(b, &env)
		for _, e := range env.Events {
			if e.Action == "push" && e.Target.Repository == "acme/proc" && e.Target.Tag == "1.0.0" {
				mu.Lock()
				auths = append(auths, r.Header.Get("Authorization"))
				mu.Unlock()
				pushed <- struct{}{}
			}
		}
	}))
	defer sink.Close()
	reg, err := testenv.StartDistributionProcess(testenv.DistributionOptions{
		NotifyURL: sink.URL, NotifyHeaders: http.Header{"Authorization": {"Bearer hook-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			reg.Close()
		}
	}()
	repo, err := orasremote.NewRepository(reg.Ref("acme/proc"))
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	ctx := context.Background()
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.v1", oras.PackManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, desc, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("no push notification for acme/proc:1.0.0 from the registry process within 10 s")
	}
	mu.Lock()
	if auths[0] != "Bearer hook-secret" {
		t.Errorf("notification without the configured header: %q", auths[0])
	}
	mu.Unlock()
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if resp, err := http.Get("http://" + reg.Host + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatalf("registry process still answers after Close: %s", resp.Status)
	}
}

// TestStockRegistryIsPinned fails when another registry binary than the
// one `make tools` pins would run as the registry process.
func TestStockRegistryIsPinned(t *testing.T) {
	tool, err := testenv.NewTool("registry", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := tool.Run(context.Background(), "--version")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimPrefix(testenv.RegistryModule, "github.com/distribution/distribution/v3/cmd/registry@")
	if !strings.Contains(out, want) {
		t.Errorf("registry --version lacks %s:\n%s", want, out)
	}
}
