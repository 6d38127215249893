package index_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// closeWatcher is a store that records misuse around Close: a call made
// after it, or a Close while a call is in flight.
type closeWatcher struct {
	store.Store
	inflight atomic.Int64
	closed   chan struct{}
	once     sync.Once

	mu     sync.Mutex
	misuse []string

	// onTagged runs inside the first Tagged call for the repository
	// fireOn, before the store is read.
	onTagged func(ctx context.Context)
	fireOn   string
	first    sync.Once
}

func (w *closeWatcher) report(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.misuse = append(w.misuse, s)
}

func (w *closeWatcher) Tagged(ctx context.Context, tenant, repository string) (map[string]store.Tagged, error) {
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	if strings.HasSuffix(repository, "/"+w.fireOn) {
		w.first.Do(func() { w.onTagged(ctx) })
	}
	select {
	case <-w.closed:
		w.report("Tagged after Close")
	default:
	}
	// The query itself runs to its end as one already sent would.
	v, err := w.Store.Tagged(context.WithoutCancel(ctx), tenant, repository)
	if err != nil {
		w.report("Tagged: " + err.Error())
	}
	return v, err
}

func (w *closeWatcher) Close() error {
	if n := w.inflight.Load(); n > 0 {
		w.report("Close with a store call in flight")
	}
	w.once.Do(func() { close(w.closed) })
	return w.Store.Close()
}

// TestServerClosesTheStoreOnlyAfterTheCrawlerReturned shuts a server down
// while its crawler is inside a store call and another crawl worker waits
// on a slow registry: the store closes after the crawler returned, never
// under it.
func TestServerClosesTheStoreOnlyAfterTheCrawlerReturned(t *testing.T) {
	reg := startRegistry(t, testenv.DistributionOptions{})
	proxy, err := testenv.StartFaultProxy(reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	pub := fixture.NewPublisher(t, reg)
	pub.Publish("", fixture.Ext{Name: "acme/aa", Version: "1.0.0"})
	pub.Publish("", fixture.Ext{Name: "acme/bb", Version: "1.0.0"})
	// The registry is slow to answer for the first repository: a crawl
	// worker is on the network when the shutdown comes, while the crawl
	// reads the store for the second.
	proxy.Inject(testenv.Fault{Kind: testenv.Stall, PathContains: "acme/aa/manifests/", Delay: time.Hour})

	dir := t.TempDir()
	cfg := &index.Config{Store: "sqlite://" + filepath.Join(dir, "index.db"), WebhookSecret: "s", Dir: dir, Sources: []index.Source{{
		Name: "slow", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
		Tenant: "acme", Visibility: store.Public, Interval: time.Hour,
	}}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	w := &closeWatcher{Store: srv.Store, closed: make(chan struct{}), fireOn: "acme/bb"}
	w.onTagged = func(callCtx context.Context) {
		shutdown() // while the crawler is inside this call
		<-callCtx.Done()
		// A server that does not wait for its crawler closes the store now;
		// give it the chance to, bounded: one that waits never will.
		select {
		case <-w.closed:
		case <-time.After(500 * time.Millisecond):
		}
	}
	srv.Store = w
	srv.Crawler.Ingester.Store = w
	srv.Crawler.Store = w

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server did not stop within a minute of its shutdown")
	}
	select {
	case <-w.closed:
	default:
		t.Fatal("Serve returned without closing the store")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.misuse) > 0 {
		t.Fatalf("the store was used around its Close: %v", w.misuse)
	}
}
