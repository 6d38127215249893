package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestIndexAppliesTheControlListToIngestedAndNewVersions: acme/evil is
// ingested and listed; the operator blocks it; the index, refreshing its
// control list, hides and refuses it, and also mallory/gadget, the same
// files republished under another name by another publisher in another
// tenant's source, with one control.blocked hook call each. A third
// republication ingested afterwards is blocked at ingest.
func TestIndexAppliesTheControlListToIngestedAndNewVersions(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, testenv.DistributionOptions{})
	dir := t.TempDir()
	pub, mal := fixture.NewPublisher(t, reg), fixture.NewPublisher(t, reg)
	acme, _, _ := fixture.KeyPair(t, dir, "acme")
	mallory, _, _ := fixture.KeyPair(t, dir, "mallory")
	op := fixture.NewOperator(t, pub.Remote, dir, "operator")
	files := map[string]string{"module/main.yaml": "exfiltrate: [secrets]\n", "README.md": "# handy\n"}
	evil := pub.Publish("", fixture.Ext{Name: "acme/evil", Version: "1.0.0", Files: files})
	pub.Sign(evil, acme)
	gadget := mal.Publish("", fixture.Ext{Name: "mallory/gadget", Version: "3.1.0", Files: files})
	mal.Sign(gadget, mallory)
	listRef := reg.Ref("ops/control:latest")
	op.Push(listRef, fixture.List(1, time.Now().Add(24*time.Hour)))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub, mallory.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [publishers]}
controlList: {ref: %q, keys: [operator.pub], maxAge: 1h}
`, listRef)), 0o644)
	cfg := &index.Config{Store: "sqlite://control.db", Policy: "policy.yaml", Dir: dir, Sources: []index.Source{
		{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public},
		{Name: "mallory", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"mallory/**"}, Tenant: "mallory", Visibility: store.Public},
	}}
	srv, err := index.NewServer(ctx, cfg, remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Store.Close() })
	var mu sync.Mutex
	blockedCalls := map[string]int{}
	srv.Webhook.Ingester.OnControlBlocked = func(_ context.Context, v *store.Version, d *policy.Decision) {
		mu.Lock()
		defer mu.Unlock()
		blockedCalls[v.Name+"@"+v.Version]++
		if d == nil || policy.ControlHit(d) != control.Block {
			t.Errorf("hook for %s without the blocking decision: %+v", v.Name, d)
		}
	}
	for i := range cfg.Sources {
		if st, err := srv.Crawler.Reconcile(ctx, &srv.Config.Sources[i]); err != nil || st.Ingested != 1 {
			t.Fatalf("crawl %s: %+v %v", cfg.Sources[i].Name, st, err)
		}
	}
	api := httptest.NewServer(srv.API.Handler())
	t.Cleanup(api.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, name := range []string{"acme/evil", "mallory/gadget"} {
		if code, body := get("/api/v1/resolve?name=" + name); code != http.StatusOK {
			t.Fatalf("before the block, %s does not resolve: %d %s", name, code, body)
		}
		if _, body := get("/api/v1/extensions?q=" + strings.Split(name, "/")[1]); !strings.Contains(body, name) {
			t.Fatalf("before the block, %s is not listed: %s", name, body)
		}
	}

	// The operator blocks acme/evil by its digests; the index's next
	// refresh re-derives every stored decision.
	e, err := control.EntryFor(ctx, evil, pub.Remote, control.Block, "exfiltrates secrets", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	op.Push(listRef, fixture.List(2, time.Now().Add(24*time.Hour), *e))
	changed, st, err := srv.RefreshControl(ctx)
	if err != nil || !changed || st.Updated != 2 {
		t.Fatalf("refresh: changed %v, %+v, %v", changed, st, err)
	}
	for name, tenant := range map[string]string{"acme/evil@1.0.0": "acme", "mallory/gadget@3.1.0": "mallory"} {
		n, v, _ := strings.Cut(name, "@")
		stored, err := srv.Store.Version(ctx, tenant, n, v)
		if err != nil {
			t.Fatal(err)
		}
		var d policy.Decision
		json.Unmarshal(stored.Decision, &d)
		if stored.Allowed || stored.Lifecycle != store.Blocked || policy.ControlHit(&d) != control.Block {
			t.Fatalf("%s after the block: allowed %v, lifecycle %q, checks %+v", name, stored.Allowed, stored.Lifecycle, d.Checks)
		}
		if code, body := get("/api/v1/resolve?name=" + n); code == http.StatusOK {
			t.Fatalf("%s still resolves after the block: %s", n, body)
		}
		if _, body := get("/api/v1/extensions?q=" + strings.Split(n, "/")[1]); strings.Contains(body, n) {
			t.Fatalf("%s still listed after the block: %s", n, body)
		}
	}
	// Refreshing again with no new list re-derives nothing and calls no hook twice.
	if changed, _, err := srv.RefreshControl(ctx); changed || err != nil {
		t.Fatalf("an unchanged list re-derived the catalog: %v %v", changed, err)
	}
	if _, err := srv.Reevaluate(ctx); err != nil {
		t.Fatal(err)
	}
	// A third republication, after the block, is blocked at ingest.
	again := mal.Publish("", fixture.Ext{Name: "mallory/renamed", Version: "0.1.0", Files: files})
	mal.Sign(again, mallory)
	if _, err := srv.Webhook.Ingester.Ingest(ctx, &srv.Config.Sources[1], "mallory/renamed", "0.1.0"); err != nil {
		t.Fatal(err)
	}
	if v, err := srv.Store.Version(ctx, "mallory", "mallory/renamed", "0.1.0"); err != nil || v.Lifecycle != store.Blocked || v.Allowed {
		t.Fatalf("a republication ingested after the block: %+v %v", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"acme/evil@1.0.0": 1, "mallory/gadget@3.1.0": 1, "mallory/renamed@0.1.0": 1}
	if fmt.Sprint(blockedCalls) != fmt.Sprint(want) {
		t.Fatalf("control.blocked hook calls: %v, want %v", blockedCalls, want)
	}
}

// TestIndexRefusesARolledBackControlList: the registry serving an older
// list after a newer one changes nothing the index decided.
func TestIndexRefusesARolledBackControlList(t *testing.T) {
	ctx := context.Background()
	w := newControlWorld(t)
	reg, dir, pub, op, evil := w.reg, w.dir, w.pub, w.op, w.evil
	listRef := reg.Ref("ops/control:latest")
	old := op.Push(reg.Ref("ops/control:old"), fixture.List(1, time.Now().Add(24*time.Hour)))
	e, _ := control.EntryFor(ctx, evil, pub.Remote, control.Block, "bad", time.Now())
	op.Push(listRef, fixture.List(2, time.Now().Add(24*time.Hour), *e))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub]}
rules:
  - {name: all, match: {repositories: ["**"]}, signatures: {trustRoots: [publishers]}}
controlList: {ref: %q, keys: [operator.pub]}
`, listRef)), 0o644)
	cfg := &index.Config{Store: "sqlite://control.db", Policy: "policy.yaml", Dir: dir, Sources: []index.Source{
		{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}}}
	srv, err := index.NewServer(ctx, cfg, remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Store.Close() })
	if _, err := srv.Crawler.Reconcile(ctx, &srv.Config.Sources[0]); err != nil {
		t.Fatal(err)
	}
	srv.RefreshControl(ctx)
	op.Retag(old.Reference, listRef)
	_, _, err = srv.RefreshControl(ctx)
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("want the rollback reported, got %v", err)
	}
	if v, err := srv.Store.Version(ctx, "acme", "acme/evil", "1.0.0"); err != nil || v.Lifecycle != store.Blocked {
		t.Fatalf("after a rollback attempt acme/evil must stay blocked: %+v %v", v, err)
	}
}

// controlWorld is the setup the control-list tests share: a registry, a
// publisher acme with its key, the operator who signs lists, and acme/evil
// signed by acme, the version the lists block.
type controlWorld struct {
	reg  *testenv.Registry
	dir  string
	pub  *fixture.Publisher
	acme *signing.Signer
	op   *fixture.Operator
	evil string
}

func newControlWorld(t *testing.T) *controlWorld {
	t.Helper()
	reg := startRegistry(t, testenv.DistributionOptions{})
	w := &controlWorld{reg: reg, dir: t.TempDir(), pub: fixture.NewPublisher(t, reg)}
	w.acme, _, _ = fixture.KeyPair(t, w.dir, "acme")
	w.op = fixture.NewOperator(t, w.pub.Remote, w.dir, "operator")
	w.evil = w.pub.Publish("", fixture.Ext{Name: "acme/evil", Version: "1.0.0"})
	w.pub.Sign(w.evil, w.acme)
	return w
}
