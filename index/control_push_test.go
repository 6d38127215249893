package index_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestControlListPushReachesTheCatalogAtOnce: the registry notifies the
// index of a push to the control list's repository, and the index reads
// the list then, not at its next refresh (an hour here): the block hides
// the version from the catalog while the timer is far away. A push to
// another repository, or a notification of a list the operator did not
// sign, changes nothing. The list's registry is reached over plain HTTP
// because the source of that registry is (as under mkt dev up).
func TestControlListPushReachesTheCatalogAtOnce(t *testing.T) {
	ctx := context.Background()
	ln, base, reg := notifyingRegistry(t)
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	acme, _, _ := fixture.KeyPair(t, dir, "acme")
	op := fixture.NewOperator(t, pub.Remote, dir, "operator")
	mallory := fixture.NewOperator(t, pub.Remote, dir, "mallory")
	listRef := reg.Ref("ops/control:latest")
	op.Push(listRef, fixture.List(1, time.Now().Add(24*time.Hour)))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
controlList: {ref: %q, keys: [operator.pub], maxAge: 2h}
`, listRef)), 0o644)
	cfg := &index.Config{Store: "sqlite://" + filepath.Join(dir, "index.db"), Policy: "policy.yaml", Dir: dir, WebhookSecret: secret,
		Sources: []index.Source{{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
			Tenant: "acme", Visibility: store.Public, Interval: time.Hour}}}
	// The index's own options say nothing of plain HTTP: it reaches the
	// control list as it reaches the source of the same registry.
	srv, err := index.NewServer(ctx, cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.ControlRefresh = time.Hour
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ServeWatchingPolicy(sctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	listed := func() bool {
		resp, err := http.Get(base + "/api/v1/extensions?q=evil")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"acme/evil"`)
	}
	evil := pub.Publish("", fixture.Ext{Name: "acme/evil", Version: "1.0.0"})
	pub.Sign(evil, acme)
	eventually(t, "acme/evil ingested and listed", listed)

	e, err := control.EntryFor(ctx, evil, pub.Remote, control.Block, "exfiltrates secrets", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's list at the same reference: the index reads it on
	// the notification, refuses its signature, and keeps listing.
	mallory.Push(listRef, fixture.List(9, time.Now().Add(24*time.Hour), *e))
	other := pub.Publish("", fixture.Ext{Name: "acme/other", Version: "1.0.0"})
	pub.Sign(other, acme)
	eventually(t, "acme/other ingested", func() bool {
		_, err := srv.Store.Version(ctx, "acme", "acme/other", "1.0.0")
		return err == nil
	})
	if !listed() {
		t.Fatal("a control list the operator did not sign hid acme/evil")
	}
	op.Push(listRef, fixture.List(10, time.Now().Add(24*time.Hour), *e))
	eventually(t, "the pushed block to hide acme/evil, an hour before the next refresh", func() bool { return !listed() })
	v, err := srv.Store.Version(ctx, "acme", "acme/evil", "1.0.0")
	if err != nil || v.Lifecycle != store.Blocked || v.Allowed {
		t.Fatalf("acme/evil after the block: %+v %v", v, err)
	}
}
