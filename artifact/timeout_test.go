package artifact_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
)

// silent starts a registry stand-in that accepts connections and never
// answers.
func silent(t *testing.T) *testenv.SilentListener {
	t.Helper()
	s, err := testenv.StartSilentListener()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantTimeout fails unless err is a TimeoutError of setting that came
// after limit and well before the next multiple of it (no retries).
func wantTimeout(t *testing.T, err error, took time.Duration, setting string, limit time.Duration) *remote.TimeoutError {
	t.Helper()
	var te *remote.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("want a TimeoutError, got %v", err)
	}
	if te.Setting != setting || te.Limit != limit || !strings.Contains(err.Error(), "did not answer within "+limit.String()) {
		t.Fatalf("want %s=%s named in the error, got %v", setting, limit, err)
	}
	if took < limit || took > 2*limit+time.Second {
		t.Fatalf("failed after %s, want just over %s", took, limit)
	}
	if remote.IsTransient(err) {
		t.Fatal("a timeout is reported as transient, so callers would retry it")
	}
	return te
}

func TestPullFromRegistryThatNeverAnswersFailsWithinTimeout(t *testing.T) {
	s := silent(t)
	r, err := artifact.NewRepository(s.Host+"/acme/widget:1.0.0", remote.Options{PlainHTTP: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	start := time.Now()
	_, err = artifact.Pull(context.Background(), r, "1.0.0", filepath.Join(parent, "out"), artifact.PullOptions{})
	te := wantTimeout(t, err, time.Since(start), "Timeout", time.Second)
	if te.Host != s.Host || !strings.Contains(te.Request, "/v2/acme/widget/manifests/1.0.0") {
		t.Fatalf("error does not say which registry and request: %v", err)
	}
	if n := s.Accepted(); n != 1 {
		t.Fatalf("%d connections: a timed-out request was retried", n)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("failed pull left %v", entries)
	}
}

// Over HTTPS a silent registry hangs the TLS handshake: ConnectTimeout
// bounds it, whatever Timeout says.
func TestTLSHandshakeWithSilentRegistryFailsWithinConnectTimeout(t *testing.T) {
	s := silent(t)
	r, err := artifact.NewRepository(s.Host+"/acme/widget:1.0.0", remote.Options{ConnectTimeout: time.Second, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = artifact.Fetch(context.Background(), r, "1.0.0")
	wantTimeout(t, err, time.Since(start), "ConnectTimeout", time.Second)
}

// A layer whose body stops coming after its headers and first bytes fails
// once it has been silent for Timeout, and leaves nothing behind.
func TestPullOfStalledLayerFailsWithinTimeout(t *testing.T) {
	ctx := context.Background()
	defer proxy.Clear()
	repo := uniqueRepo(t)
	pkg := pack(t, sampleWithBlob(t, 300<<10))
	if _, err := artifact.Push(ctx, openRepo(t, distPlain, repo), "", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy.Inject(testenv.Fault{Kind: testenv.Slow, Method: "GET", PathContains: pkg.Layer.Digest.Encoded(), Delay: time.Minute})
	r, err := artifact.NewRepository(proxy.Host+"/"+repo, remote.Options{PlainHTTP: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	start := time.Now()
	_, err = artifact.Pull(ctx, r, pkg.Extension.Metadata.Version, filepath.Join(parent, "out"), artifact.PullOptions{})
	if te := wantTimeout(t, err, time.Since(start), "Timeout", time.Second); te.Waiting != "more of the body" {
		t.Fatalf("want a body stall, got %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("failed pull left %v", entries)
	}
}

// Timeout bounds silence, not the transfer: a layer that keeps moving
// arrives even when it takes several times Timeout.
func TestSlowButMovingLayerIsNotCutByTimeout(t *testing.T) {
	ctx := context.Background()
	defer proxy.Clear()
	repo := uniqueRepo(t)
	pkg := pack(t, sampleWithBlob(t, 300<<10))
	if _, err := artifact.Push(ctx, openRepo(t, distPlain, repo), "", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy.Inject(testenv.Fault{Kind: testenv.Slow, Method: "GET", PathContains: pkg.Layer.Digest.Encoded(), Delay: 250 * time.Millisecond})
	r, err := artifact.NewRepository(proxy.Host+"/"+repo, remote.Options{PlainHTTP: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := artifact.Pull(ctx, r, pkg.Extension.Metadata.Version, filepath.Join(t.TempDir(), "out"), artifact.PullOptions{}); err != nil {
		t.Fatalf("slow pull cut: %v", err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("pull took %s: the layer was not slowed, the test proves nothing", took)
	}
}
