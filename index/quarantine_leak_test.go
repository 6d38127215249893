package index_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestImpactHidesQuarantinedVersions: a quarantined version (not passed
// its stage's policy, DESIGN §6.2) is seen only by its own tenant and by
// reviewers, also where the impact graph would name it: as a dependent in
// another publisher's blast radius, on the anonymous page of a yanked
// version, and in the 403-versus-404 answer to a query naming it.
func TestImpactHidesQuarantinedVersions(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			w := newImpactWorld(t, s.open(t))
			ctx := context.Background()
			// initech's new public version, held in the public stage's
			// quarantine, depends on acme/http 1.2.0.
			desc, _ := json.Marshal(map[string]any{"apiVersion": "marketplace.connectsoft.io/v1", "kind": "Module",
				"metadata": map[string]any{"name": "initech/embargoed", "version": "1.0.0"},
				"spec":     map[string]any{"license": "MIT", "dependencies": []map[string]string{{"name": "acme/http", "version": "^1.2.0"}}}})
			if _, err := w.st.UpsertVersion(ctx, &store.Version{Tenant: "initech", Name: "initech/embargoed", Version: "1.0.0",
				Repository: "reg/initech/embargoed", Digest: "sha256:initech/embargoed@1.0.0", Kind: "Module", License: "MIT",
				Visibility: store.Public, Stage: "public", Quarantined: true, Descriptor: desc, IngestedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			got, err := w.impact("acme/publisher", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
			if err != nil {
				t.Fatal(err)
			}
			if body, _ := json.Marshal(got); strings.Contains(string(body), "embargoed") {
				t.Errorf("acme's impact names initech's quarantined version: %s", body)
			}
			// Naming it: exactly like a version that does not exist.
			for _, q := range []client.ImpactQuery{{Name: "initech/embargoed", Version: "1.0.0"}, {Digest: "sha256:initech/embargoed@1.0.0"}} {
				if _, err := w.impact("globex/publisher", q); !errors.Is(err, client.ErrNotFound) {
					t.Errorf("globex asking for initech's quarantined %+v: %v, want not found, as for none", q, err)
				}
			}
			// The anonymous page of a yanked acme/http 1.2.0.
			v, err := w.st.Version(ctx, "acme", "acme/http", "1.2.0")
			if err != nil {
				t.Fatal(err)
			}
			v.Lifecycle = "yanked"
			if _, err := w.st.UpsertVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(mustRequest(t, w.url+"/extensions/acme/http", ""))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `data-impact="1.2.0"`) {
				t.Fatalf("page: %d %s", resp.StatusCode, b)
			}
			if strings.Contains(string(b), "embargoed") {
				t.Errorf("the anonymous page of yanked acme/http 1.2.0 names initech's quarantined version")
			}
			// Its own tenant still sees it in its blast radius.
			if got, err := w.impact("initech/publisher", client.ImpactQuery{Name: "initech/embargoed", Version: "1.0.0"}); err != nil || len(got.Targets) != 1 {
				t.Errorf("initech's own quarantined version: %+v %v", got, err)
			}
		})
	}
}

// TestSubscriptionsHearOfQuarantinedVersionsOnRelease: a tenant
// subscription hears only what its tenant may see (DESIGN §6.5), and a
// quarantined version is not that (§6.2): globex's subscription is told
// nothing of acme's public version while it waits for review, and is told
// it was published once it is released.
func TestSubscriptionsHearOfQuarantinedVersionsOnRelease(t *testing.T) {
	const secret2 = "a-subscription-secret-0123"
	recv := newReceiver(t, secret2)
	ln, _, reg := notifyingRegistry(t)
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "acme")
	os.WriteFile(filepath.Join(dir, "public-policy.yaml"), []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub], publishers: [acme]}
rules:
  - name: public
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
`), 0o644)
	dbPath := filepath.Join(dir, "index.db")
	cfg := &index.Config{Store: "sqlite://" + dbPath, WebhookSecret: secret, Dir: dir, Operator: "ops",
		Stages: []index.Stage{{Name: "public", Policy: "public-policy.yaml"}},
		Sources: []index.Source{{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
			Tenant: "acme", Visibility: store.Public, Interval: time.Hour, Stage: "public"}},
		Subscriptions: []index.Subscription{
			{Name: "acme", URL: recv.srv.URL + "/acme", Secret: secret2, Tenant: "acme"},
			{Name: "globex", URL: recv.srv.URL + "/globex", Secret: secret2, Tenant: "globex"},
		},
		Delivery: index.DeliveryOptions{MaxAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	}
	srv, err := index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	stored := func() *store.Version {
		v, err := srv.Store.Version(context.Background(), "acme", "acme/widget", "1.0.0")
		if err != nil {
			return nil
		}
		return v
	}
	pub := fixture.NewPublisher(t, reg)
	ref := pub.Publish("", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	waitUntil(t, "acme's subscription told of its quarantined version", 30*time.Second, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return recv.paths["/acme"] == 1
	})
	if v := stored(); v == nil || !v.Quarantined {
		t.Fatalf("the unsigned version is not quarantined: %+v", v)
	}
	// The deliveries of one write are queued in its transaction: the
	// queue holds every one there will be for it.
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var told int
	if err := db.QueryRow(`SELECT count(*) FROM river_job WHERE json_extract(args, '$.subscription') = 'globex'`).Scan(&told); err != nil {
		t.Fatal(err)
	}
	if told != 0 {
		t.Errorf("globex's subscription was queued %d event(s) of acme's quarantined version", told)
	}
	pub.Sign(ref, signer)
	waitUntil(t, "the signed version released", 30*time.Second, func() bool { v := stored(); return v != nil && !v.Quarantined })
	waitUntil(t, "globex's subscription told of the released version", 30*time.Second, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return recv.paths["/globex"] == 1
	})
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.paths["/acme"] != 1 {
		t.Errorf("acme's subscription heard %d events, want the one publication", recv.paths["/acme"])
	}
	for _, e := range recv.events {
		if e.Type != index.CloudEventType(index.EventVersionPublished) {
			t.Errorf("event %s %s", e.Type, e.Subject)
		}
	}
}
