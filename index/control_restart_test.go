package index_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestRestartedIndexRefusesARolledBackControlList: an index that accepted
// sequence 5 (blocking acme/evil) is restarted — a new Server on the same
// store — while the registry serves sequence 4, validly signed and
// unexpired, that blocks nothing. The restarted index refuses it as a
// rollback: the stored decisions stay judged by sequence 5 (acme/evil
// blocked, acme/good allowed) until maxAge has passed since sequence 5 was
// last fetched, and then fail closed (nothing allowed), as policy.md says
// of a refused list. On SQLite and PostgreSQL.
func TestRestartedIndexRefusesARolledBackControlList(t *testing.T) {
	for driver, url := range map[string]func(t *testing.T, dir string) string{
		"sqlite":   func(_ *testing.T, dir string) string { return "sqlite://" + filepath.Join(dir, "index.db") },
		"postgres": func(t *testing.T, _ string) string { return storetest.PostgresSchema(t) },
	} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			const maxAge = 20 * time.Second
			ctx := context.Background()
			w := newControlWorld(t)
			reg, dir, pub, acme, op, evil := w.reg, w.dir, w.pub, w.acme, w.op, w.evil
			good := pub.Publish("", fixture.Ext{Name: "acme/good", Version: "1.0.0"})
			pub.Sign(good, acme)
			listRef := reg.Ref("ops/control:latest")
			old := op.Push(reg.Ref("ops/control:old"), fixture.List(4, time.Now().Add(24*time.Hour)))
			e, err := control.EntryFor(ctx, evil, pub.Remote, control.Block, "exfiltrates secrets", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			op.Push(listRef, fixture.List(5, time.Now().Add(24*time.Hour), *e))
			os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub]}
rules:
  - {name: all, match: {repositories: ["**"]}, signatures: {trustRoots: [publishers]}}
controlList: {ref: %q, keys: [operator.pub], maxAge: %s}
`, listRef, maxAge)), 0o644)
			cfg := &index.Config{Store: url(t, dir), Policy: "policy.yaml", Dir: dir, Sources: []index.Source{
				{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}}}
			start := func() *index.Server {
				t.Helper()
				c := *cfg
				srv, err := index.NewServer(ctx, &c, remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")},
					slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				srv.ControlRefresh = time.Millisecond
				return srv
			}
			allowed := func(srv *index.Server, name string) (bool, string) {
				t.Helper()
				v, err := srv.Store.Version(ctx, "acme", name, "1.0.0")
				if err != nil {
					t.Fatal(err)
				}
				return v.Allowed && v.Lifecycle != store.Blocked, string(v.Decision)
			}

			first := start()
			if st, err := first.Crawler.Reconcile(ctx, &first.Config.Sources[0]); err != nil || st.Ingested != 2 {
				t.Fatalf("crawl: %+v %v", st, err)
			}
			if _, _, err := first.RefreshControl(ctx); err != nil {
				t.Fatal(err)
			}
			fetched := time.Now() // sequence 5 was last fetched before this
			if ok, d := allowed(first, "acme/evil"); ok {
				t.Fatalf("sequence 5 blocks acme/evil, yet it is allowed: %s", d)
			}
			first.Store.Close()

			// The registry now serves sequence 4 under the tag; the index restarts.
			op.Retag(old.Reference, listRef)
			second := start()
			t.Cleanup(func() { second.Store.Close() })
			_, _, err = second.RefreshControl(ctx)
			if err == nil || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "sequence 4") || !strings.Contains(err.Error(), "sequence 5") {
				t.Fatalf("the restarted index must refuse sequence 4 as a rollback of sequence 5, got %v", err)
			}
			if time.Since(fetched) >= maxAge {
				t.Fatalf("the restart took longer than maxAge %s; the rest of the test cannot tell a rollback from staleness", maxAge)
			}
			if ok, d := allowed(second, "acme/evil"); ok {
				t.Fatalf("after the restart acme/evil must stay blocked by sequence 5: %s", d)
			}
			if ok, d := allowed(second, "acme/good"); !ok {
				t.Fatalf("sequence 5, still in force, allows acme/good: %s", d)
			}
			// A new ingest is decided with sequence 5 too.
			if _, err := second.Webhook.Ingester.Ingest(ctx, &second.Config.Sources[0], "acme/evil", "1.0.0"); err != nil {
				t.Fatal(err)
			}
			if ok, d := allowed(second, "acme/evil"); ok {
				t.Fatalf("acme/evil ingested again after the restart is allowed: %s", d)
			}

			// maxAge passes with only the rolled-back list to be had: fail closed.
			waitUntil(t, "maxAge to pass since sequence 5 was fetched", 2*maxAge, func() bool { return time.Since(fetched) > maxAge+time.Second })
			if _, _, err := second.RefreshControl(ctx); err == nil || !strings.Contains(err.Error(), "rolled back") {
				t.Fatalf("sequence 4 must still be refused, got %v", err)
			}
			for _, name := range []string{"acme/evil", "acme/good"} {
				if ok, d := allowed(second, name); ok || !strings.Contains(d, "maxAge") {
					t.Fatalf("after maxAge with sequence 4 refused, %s must fail closed naming maxAge: allowed %v, %s", name, ok, d)
				}
			}
		})
	}
}

// TestIndexReplicaRefusesAListOlderThanAnotherReplicaAccepted: two index
// replicas share a store. Replica B accepted sequence 5; replica A then
// accepted sequence 6, which blocks acme/evil; the registry goes back to
// serving sequence 5. B, whose own newest is 5, reads the state before
// fetching, so it refuses sequence 5 as a rollback of 6 and decides its
// ingests with 6. On SQLite and PostgreSQL.
func TestIndexReplicaRefusesAListOlderThanAnotherReplicaAccepted(t *testing.T) {
	for driver, url := range map[string]func(t *testing.T, dir string) string{
		"sqlite":   func(_ *testing.T, dir string) string { return "sqlite://" + filepath.Join(dir, "index.db") },
		"postgres": func(t *testing.T, _ string) string { return storetest.PostgresSchema(t) },
	} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			w := newControlWorld(t)
			reg, dir, pub, op, evil := w.reg, w.dir, w.pub, w.op, w.evil
			listRef := reg.Ref("ops/control:latest")
			e, err := control.EntryFor(ctx, evil, pub.Remote, control.Block, "exfiltrates secrets", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			five := op.Push(reg.Ref("ops/control:five"), fixture.List(5, time.Now().Add(24*time.Hour)))
			six := op.Push(reg.Ref("ops/control:six"), fixture.List(6, time.Now().Add(24*time.Hour), *e))
			op.Retag(five.Reference, listRef)
			os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub]}
rules:
  - {name: all, match: {repositories: ["**"]}, signatures: {trustRoots: [publishers]}}
controlList: {ref: %q, keys: [operator.pub]}
`, listRef)), 0o644)
			cfg := &index.Config{Store: url(t, dir), Policy: "policy.yaml", Dir: dir, Sources: []index.Source{
				{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}}}
			start := func() *index.Server {
				t.Helper()
				c := *cfg
				srv, err := index.NewServer(ctx, &c, remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")},
					slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				srv.ControlRefresh = time.Millisecond
				t.Cleanup(func() { srv.Store.Close() })
				return srv
			}
			a, b := start(), start()
			if _, _, err := b.RefreshControl(ctx); err != nil {
				t.Fatalf("replica B reading sequence 5: %v", err)
			}
			op.Retag(six.Reference, listRef)
			if _, _, err := a.RefreshControl(ctx); err != nil {
				t.Fatalf("replica A reading sequence 6: %v", err)
			}
			op.Retag(five.Reference, listRef)
			_, _, err = b.RefreshControl(ctx)
			if err == nil || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "sequence 5") || !strings.Contains(err.Error(), "sequence 6") {
				t.Fatalf("replica B must refuse sequence 5 as a rollback of the 6 replica A accepted, got %v", err)
			}
			if _, err := b.Webhook.Ingester.Ingest(ctx, &b.Config.Sources[0], "acme/evil", "1.0.0"); err != nil {
				t.Fatal(err)
			}
			if v, err := b.Store.Version(ctx, "acme", "acme/evil", "1.0.0"); err != nil || v.Allowed || v.Lifecycle != store.Blocked {
				t.Fatalf("replica B ingested acme/evil with sequence 5 in force, not 6: %+v %v", v, err)
			}
		})
	}
}
