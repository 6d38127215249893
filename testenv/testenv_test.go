package testenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/testenv"
	"oras.land/oras-go/v2"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// TestDistributionSendsNotifications checks the option later index tests
// build on: the real registry posts its own event envelope to a URL.
func TestDistributionSendsNotifications(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var auths []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer sink.Close()
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL:     sink.URL,
		NotifyHeaders: http.Header{"Authorization": {"Bearer hook-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	repo, err := orasremote.NewRepository(reg.Ref("acme/notified"))
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
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		for i, b := range bodies {
			var env struct {
				Events []struct {
					Action string
					Target struct{ Repository, Tag, MediaType string }
				}
			}
			json.Unmarshal([]byte(b), &env)
			for _, e := range env.Events {
				if e.Action == "push" && e.Target.Repository == "acme/notified" && e.Target.Tag == "1.0.0" {
					if auths[i] != "Bearer hook-secret" {
						t.Fatalf("notification without the configured header: %q", auths[i])
					}
					mu.Unlock()
					return
				}
			}
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no push notification for acme/notified:1.0.0 arrived; got %v", bodies)
}

func TestFaultProxyInjectsEachFault(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 100<<10))
	}))
	defer upstream.Close()
	p, err := testenv.StartFaultProxy(strings.TrimPrefix(upstream.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	get := func() (int, []byte, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + p.Host + "/v2/x/blobs/sha256:abc")
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	if code, b, err := get(); err != nil || code != 200 || len(b) != 100<<10 {
		t.Fatalf("pass-through: %d %d %v", code, len(b), err)
	}
	p.Inject(testenv.Fault{Kind: testenv.Reset, Times: 1})
	if _, _, err := get(); err == nil || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || isNetErr(err)) {
		t.Fatalf("reset: %v", err)
	}
	p.Inject(testenv.Fault{Kind: testenv.Status, Status: 503, Times: 1})
	if code, _, _ := get(); code != 503 {
		t.Fatalf("status fault gave %d", code)
	}
	p.Inject(testenv.Fault{Kind: testenv.Truncate, After: 1000, Times: 1})
	if _, b, err := get(); !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 1000 {
		t.Fatalf("truncate: %d bytes, %v", len(b), err)
	}
	p.Inject(testenv.Fault{Kind: testenv.Corrupt, After: 10, Times: 1})
	if _, b, _ := get(); b[10] == 'x' || b[9] != 'x' {
		t.Fatal("corrupt fault did not flip byte 10")
	}
	p.Inject(testenv.Fault{Kind: testenv.Slow, Delay: 20 * time.Millisecond, Times: 1})
	start := time.Now()
	if _, b, err := get(); err != nil || len(b) != 100<<10 || time.Since(start) < 60*time.Millisecond {
		t.Fatalf("slow: %d bytes in %v, %v", len(b), time.Since(start), err)
	}
	if p.Hits() != 5 {
		t.Fatalf("hits %d, want 5", p.Hits())
	}
	if code, b, err := get(); err != nil || code != 200 || len(b) != 100<<10 {
		t.Fatalf("spent faults still fire: %d %d %v", code, len(b), err)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// TestStockToolsArePinned fails when a different oras or cosign would be
// exercised by the interop tests than the ones the design names.
func TestStockToolsArePinned(t *testing.T) {
	for name, want := range map[string]string{"oras": "1.3.6", "cosign": "v2.6.5"} {
		tool, err := testenv.NewTool(name, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		out, err := tool.Run(context.Background(), "version")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s version output lacks %s:\n%s", name, want, out)
		}
	}
}
