package index_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// reloadServer is an index server on w's registry whose policy file trusts
// keyFile for signatures.
func reloadServer(t *testing.T, w *evidenceWorld, policyYAML string) *index.Server {
	t.Helper()
	writePolicy(t, w, policyYAML)
	cfg := &index.Config{Store: "sqlite://reload.db", Policy: "policy.yaml", Dir: w.dir, Sources: []index.Source{w.src}}
	srv, err := index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(w.dir, "config.json")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Store.Close() })
	return srv
}

func writePolicy(t *testing.T, w *evidenceWorld, policyYAML string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, "policy.yaml"), []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
}

func signedIn(t *testing.T, st store.Store, name, version string) bool {
	t.Helper()
	v, err := st.Version(context.Background(), "acme", name, version)
	if err != nil {
		t.Fatal(err)
	}
	return v.Signed
}

// TestPolicyReloadRederivesStoredDecisions: a changed policy file used to
// change nothing stored until each version was pushed again. ReloadPolicy,
// and SIGHUP to a watching server, re-derive every stored decision.
func TestPolicyReloadRederivesStoredDecisions(t *testing.T) {
	w := newEvidenceWorld(t, false)
	ctx := context.Background()
	fixture.KeyPair(t, w.dir, "other")
	trustsOther := strings.ReplaceAll(evidencePolicy, "acme.pub", "other.pub")
	srv := reloadServer(t, w, trustsOther)
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/reload", Version: "1.0.0"})
	w.pub.Sign(ref, w.signer)
	if st, err := srv.Crawler.Reconcile(ctx, &srv.Config.Sources[0]); err != nil || st.Ingested != 1 {
		t.Fatalf("crawl: %+v %v", st, err)
	}
	if signedIn(t, srv.Store, "acme/reload", "1.0.0") {
		t.Fatal("signed by acme's key while the policy trusts only other's")
	}

	writePolicy(t, w, evidencePolicy)
	st, err := srv.ReloadPolicy(ctx)
	if err != nil || st.Versions != 1 || st.Updated != 1 || st.Errors != 0 {
		t.Fatalf("reload: %+v %v", st, err)
	}
	if !signedIn(t, srv.Store, "acme/reload", "1.0.0") {
		t.Fatal("not signed after the policy that trusts acme's key was reloaded")
	}

	// SIGHUP, really delivered to this process, does the same.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); srv.WatchPolicy(watchCtx, hup) }()
	defer func() { stop(); <-watched }()
	writePolicy(t, w, trustsOther)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "acme/reload@1.0.0 unsigned after SIGHUP", func() bool { return !signedIn(t, srv.Store, "acme/reload", "1.0.0") })

	// A policy file that does not load keeps the policy in force.
	writePolicy(t, w, "kind: Policy\nrules: [")
	if _, err := srv.ReloadPolicy(ctx); err == nil || !strings.Contains(err.Error(), "keeps the policy it had") {
		t.Fatalf("reloading a broken policy file: %v", err)
	}
	if srv.Webhook.Ingester.CurrentPolicy() == nil {
		t.Fatal("a broken policy file removed the policy")
	}
}

// TestTrustRootWindowEdgeRederivesStoredDecisions: a signature by a key
// whose trust root's window has closed stayed "signed" until something was
// pushed again; the server re-derives decisions at the edge.
func TestTrustRootWindowEdgeRederivesStoredDecisions(t *testing.T) {
	ctx := context.Background()
	// The window must still be open once one version is ingested: a slow
	// machine gets a longer one, never a skipped test.
	for i, window := range []time.Duration{3 * time.Second, 15 * time.Second, time.Minute} {
		w := newEvidenceWorld(t, false)
		edge := time.Now().UTC().Truncate(time.Second).Add(window)
		windowed := strings.Replace(evidencePolicy, "{name: acme, keys: [acme.pub]}",
			"{name: acme, keys: [acme.pub], validUntil: "+edge.Format(time.RFC3339)+"}", 1)
		srv := reloadServer(t, w, windowed)
		ref := w.pub.Publish("", fixture.Ext{Name: "acme/window", Version: "1.0.0"})
		w.pub.Sign(ref, w.signer)
		if st, err := srv.Crawler.Reconcile(ctx, &srv.Config.Sources[0]); err != nil || st.Ingested != 1 {
			t.Fatalf("crawl: %+v %v", st, err)
		}
		if time.Now().After(edge) {
			t.Logf("attempt %d: ingesting one version took longer than the %s window; trying a longer one", i+1, window)
			continue
		}
		if !signedIn(t, srv.Store, "acme/window", "1.0.0") {
			t.Fatal("not signed inside the trust root's window")
		}
		watchCtx, stop := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); srv.WatchPolicy(watchCtx, nil) }()
		defer func() { stop(); <-watched }()
		within(t, time.Until(edge)+30*time.Second, "acme/window@1.0.0 unsigned after its trust root's window closed", func() bool {
			return !signedIn(t, srv.Store, "acme/window", "1.0.0")
		})
		if !time.Now().After(edge) {
			t.Fatal("unsigned before the window closed")
		}
		return
	}
	t.Fatal("the machine never ingested one version inside a one-minute trust window")
}

// crawlLog counts the crawl's "crawl" records (one per finished reconcile)
// and remembers their errors.
type crawlLog struct {
	slog.Handler
	done chan string
}

func (h *crawlLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "crawl" {
		errText := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" && a.Value.Any() != nil {
				errText = a.Value.String()
			}
			return true
		})
		h.done <- errText
	}
	return nil
}

// TestCrawlOfASilentRegistryEndsAtItsDeadline: a registry that accepts
// connections and never answers held the crawl of its source for ever, so
// the source was never crawled again. With crawlTimeout the crawl ends with
// an error, and the next interval crawls again.
func TestCrawlOfASilentRegistryEndsAtItsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() { // accept, read, never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	st := storeFor(t)
	log := &crawlLog{Handler: slog.NewTextHandler(io.Discard, nil), done: make(chan string, 16)}
	c := &index.Crawler{Log: slog.New(log), Store: st, Ingester: &index.Ingester{Store: st, Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
	}}}
	src := index.Source{Name: "silent", Registry: ln.Addr().String(), PlainHTTP: true, Repositories: []string{"acme/**"},
		Tenant: "acme", Visibility: store.Public, Interval: 400 * time.Millisecond, CrawlTimeout: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() { // Run returns once its crawls have
		defer close(returned)
		c.Run(ctx, []index.Source{src})
	}()
	defer func() {
		cancel()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	}()
	for i := range 2 {
		select {
		case errText := <-log.done:
			if !strings.Contains(errText, "crawlTimeout") && !strings.Contains(errText, "deadline") {
				t.Fatalf("crawl %d of a silent registry ended without a deadline error: %q", i+1, errText)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("crawl %d of a silent registry did not end within 10 s", i+1)
		}
	}
}

func storeFor(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
