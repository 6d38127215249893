package index_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestIndexFailsClosedWhenItsControlListExpiresOrGoesStale: the index
// honours the control list "fail closed after maxAge" and refuses an
// expired one (issue 13) also for the versions it decided before: once
// the list in force expires, or cannot be refreshed for longer than
// maxAge, the next refresh re-derives the stored decisions and resolution
// refuses what it allowed, until a fresh list is read again.
func TestIndexFailsClosedWhenItsControlListExpiresOrGoesStale(t *testing.T) {
	for _, c := range []struct {
		name    string
		expires time.Duration
		maxAge  string
	}{
		{"expired", 3 * time.Second, "1h"},
		{"stale", time.Hour, "2s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			reg := startRegistry(t, testenv.DistributionOptions{})
			// The list lives on a registry of its own, which goes away.
			ops, err := testenv.StartDistribution(testenv.DistributionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					ops.Close()
				}
			})
			dir := t.TempDir()
			pub := fixture.NewPublisher(t, reg)
			acme, _, _ := fixture.KeyPair(t, dir, "acme")
			op := fixture.NewOperator(t, pub.Remote, dir, "operator")
			ref := pub.Publish("", fixture.Ext{Name: "acme/tool", Version: "1.0.0"})
			pub.Sign(ref, acme)
			listRef := ops.Ref("ops/control:latest")
			expires := time.Now().Add(c.expires).Truncate(time.Second).Add(time.Second)
			op.Push(listRef, fixture.List(1, expires))
			os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub]}
rules:
  - {name: all, match: {repositories: ["**"]}, signatures: {trustRoots: [publishers]}}
controlList: {ref: %q, keys: [operator.pub], maxAge: %s}
`, listRef, c.maxAge)), 0o644)
			cfg := &index.Config{Store: "sqlite://control.db", Policy: "policy.yaml", Dir: dir, Sources: []index.Source{
				{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}}}
			srv, err := index.NewServer(ctx, cfg, remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			srv.ControlRefresh = time.Millisecond
			t.Cleanup(func() { srv.Store.Close() })
			if st, err := srv.Crawler.Reconcile(ctx, &srv.Config.Sources[0]); err != nil || st.Ingested != 1 {
				t.Fatalf("crawl: %+v %v", st, err)
			}
			srv.RefreshControl(ctx)
			api := httptest.NewServer(srv.API.Handler())
			t.Cleanup(api.Close)
			resolves := func() int {
				resp, err := http.Get(api.URL + "/api/v1/resolve?name=acme/tool")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := resolves(); code != http.StatusOK {
				t.Fatalf("with a fresh list acme/tool does not resolve: %d", code)
			}
			lastRead := time.Now()
			if c.name == "stale" {
				ops.Close()
				closed = true
			}
			// The list expires, or maxAge passes with no refresh.
			waitUntil(t, "the list to expire or go stale", 30*time.Second, func() bool {
				if c.name == "expired" {
					return time.Now().After(expires)
				}
				return time.Since(lastRead) > 2500*time.Millisecond
			})
			srv.RefreshControl(ctx)
			if v, err := srv.Store.Version(ctx, "acme", "acme/tool", "1.0.0"); err != nil {
				t.Fatal(err)
			} else if v.Allowed {
				t.Errorf("with the list %s, the stored decision still allows acme/tool: %s", c.name, v.Decision)
			}
			if code := resolves(); code == http.StatusOK {
				t.Errorf("with the list %s, acme/tool still resolves (fail open)", c.name)
			}
			if c.name == "stale" {
				return
			}
			// A fresh list read again: the decisions follow it.
			op.Push(listRef, fixture.List(2, time.Now().Add(time.Hour)))
			if changed, _, err := srv.RefreshControl(ctx); !changed || err != nil {
				t.Fatalf("a fresh list after the expired one: changed %v, %v", changed, err)
			}
			if code := resolves(); code != http.StatusOK {
				t.Errorf("with a fresh list again acme/tool does not resolve: %d", code)
			}
		})
	}
}
