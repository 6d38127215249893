package index_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

func TestCrawlIngestsWithoutNotificationsAndCostsOneRequestPerUnchangedTag(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t) // notifications off
	pub := fixture.NewPublisher(t, reg)
	for _, e := range []fixture.Ext{{Name: "acme/aa", Version: "1.0.0"}, {Name: "acme/aa", Version: "1.1.0"}, {Name: "acme/bb", Version: "0.1.0"}, {Name: "globex/cc", Version: "1.0.0"}} {
		pub.Publish("", e)
	}
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	c := &index.Crawler{Store: st, Ingester: &index.Ingester{Store: st, Remote: func(s *index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}}
	stats, err := c.Reconcile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Repositories != 2 || stats.Tags != 3 || stats.Ingested != 3 || stats.Errors != 0 {
		t.Fatalf("first crawl: %+v", stats)
	}
	if vs, _ := st.Versions(ctx, "acme", "acme/aa"); len(vs) != 2 {
		t.Fatalf("acme/a has %d versions", len(vs))
	}
	// Nothing changed: one HEAD per tag, plus the catalog and tag lists.
	proxy.Clear()
	stats, err = c.Reconcile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Unchanged != 3 || stats.Ingested != 0 {
		t.Fatalf("unchanged crawl: %+v", stats)
	}
	if max := stats.Tags + 1 + stats.Repositories; proxy.Requests() > max {
		t.Fatalf("unchanged crawl cost %d requests, want at most %d (one per tag, the catalog, one tag list per repository)", proxy.Requests(), max)
	}
	// A version tag moved: the crawl notices, keeps the first, alerts.
	moved := pub.PublishForce("", fixture.Ext{Name: "acme/bb", Version: "0.1.0", Files: map[string]string{"new.txt": "new"}})
	stats, err = c.Reconcile(ctx, src)
	if err != nil || stats.Ingested != 1 {
		t.Fatalf("crawl after a move: %+v %v", stats, err)
	}
	alerts, _ := st.Alerts(ctx, "acme")
	if len(alerts) != 1 || alerts[0].Type != store.AlertTagMoved || !strings.HasSuffix(moved, alerts[0].NewDigest) {
		t.Fatalf("alerts after a move: %+v", alerts)
	}
}

func TestCrawlWithoutCatalogUsesConfiguredRepositories(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	proxy.Inject(testenv.Fault{Kind: testenv.Status, Status: 404, PathContains: "/_catalog"})
	pub := fixture.NewPublisher(t, reg)
	pub.Publish("", fixture.Ext{Name: "acme/aa", Version: "1.0.0"})
	pub.Publish("", fixture.Ext{Name: "acme/bb", Version: "1.0.0"})
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A glob cannot be listed without a catalog; a plain name can.
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/aa", "acme/b*"}, Tenant: "acme", Visibility: store.Public}
	c := &index.Crawler{Store: st, Ingester: &index.Ingester{Store: st, Remote: func(s *index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}}
	stats, err := c.Reconcile(ctx, src)
	if err != nil || stats.Repositories != 1 || stats.Ingested != 1 || proxy.Hits() == 0 {
		t.Fatalf("crawl without a catalog: %+v %v (catalog refusals: %d)", stats, err, proxy.Hits())
	}
}

// countedRegistry is a distribution registry without notifications, and a
// proxy in front of it that counts (and can fail) the crawl's requests.
func countedRegistry(t *testing.T) (*testenv.Registry, *testenv.FaultProxy) {
	t.Helper()
	reg := startRegistry(t, testenv.DistributionOptions{})
	proxy, err := testenv.StartFaultProxy(reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return reg, proxy
}
