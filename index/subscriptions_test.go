package index_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// receiver is a subscriber's endpoint: a real HTTP server that checks
// each delivery's signature with the subscription's secret, as the
// documentation tells receivers to, and keeps the events by id (it dedupes
// as a receiver should, and counts how often each id came). While down it
// answers 503, like a receiver being deployed.
type receiver struct {
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	down     bool
	refused  int                         // deliveries answered 503
	rejected int                         // deliveries whose signature did not verify
	seen     map[string]int              // event id → deliveries accepted
	paths    map[string]int              // request path → deliveries accepted
	events   map[string]index.CloudEvent // by id
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret, seen: map[string]int{}, paths: map[string]int{}, events: map[string]index.CloudEvent{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			r.refused++
			http.Error(w, "deploying", http.StatusServiceUnavailable)
			return
		}
		if err := client.VerifySignature(r.secret, body, req.Header.Get(index.SignatureHeader)); err != nil {
			r.rejected++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// What the CloudEvents Go SDK reads and validates as CloudEvents 1.0.
		var sdk cloudevent.Event
		if err := json.Unmarshal(body, &sdk); err != nil || sdk.Validate() != nil || req.Header.Get("Content-Type") != "application/cloudevents+json" {
			http.Error(w, fmt.Sprintf("not a structured CloudEvent: %v %v", err, sdk.Validate()), http.StatusBadRequest)
			return
		}
		var ce index.CloudEvent
		if err := json.Unmarshal(body, &ce); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.seen[ce.ID]++
		r.paths[req.URL.Path]++
		r.events[ce.ID] = ce
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// byType counts the distinct events of each type.
func (r *receiver) byType() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, e := range r.events {
		out[e.Type]++
	}
	return out
}

func (r *receiver) state() (refused, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused, r.rejected
}

// waitUntil polls cond until it holds or the deadline passes: deliveries
// are retried by the queue's scheduler (River's, every 5 s), so the tests
// wait on what happened, never for a fixed time.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const subscriptionPolicy = `apiVersion: marketplace.connectsoft.io/v1
kind: Policy
mode: audit
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: acme
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
    attestations:
      - type: review
        trustRoots: [acme]
        condition: 'predicate.result == "approved"'
`

// TestSubscriptionReceivesEachEventOnceThroughAnOutage is issue 13's
// subscription test: a real index server ingesting from a real registry by
// its notifications, a real receiver that is down (503) when the first
// events are sent and comes back; every event type arrives exactly once,
// signed; a forged delivery is told apart; a subscriber that never answers
// ends in the dead letters, which only the operator's admin may read.
func TestSubscriptionReceivesEachEventOnceThroughAnOutage(t *testing.T) {
	for _, s := range queueStores {
		t.Run(s.name, func(t *testing.T) { subscriptionOutage(t, s.url(t)) })
	}
}

func subscriptionOutage(t *testing.T, storeURL string) {
	const subSecret, deadSecret = "a-subscription-secret-0123", "another-subscription-secret"
	recv := newReceiver(t, subSecret)
	// A subscriber that fails every delivery, and one of tenant globex,
	// which may see acme's public versions only.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	ln, base, reg := notifyingRegistry(t)
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "acme")
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(subscriptionPolicy), 0o644)
	cfg := &index.Config{Store: storeURL, Policy: "policy.yaml", WebhookSecret: secret, Dir: dir,
		Operator: "ops", PublicURL: "https://index.example.com",
		Sources: []index.Source{{Name: "q", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
			Tenant: "acme", Visibility: store.Private, Interval: time.Hour}},
		Subscriptions: []index.Subscription{
			{Name: "security", URL: recv.srv.URL, Secret: subSecret},
			{Name: "broken", URL: broken.URL, Secret: deadSecret, Events: []string{index.EventVersionPublished}},
			{Name: "globex", URL: recv.srv.URL + "/globex", Secret: subSecret, Tenant: "globex"},
		},
		Delivery: index.DeliveryOptions{MaxAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")}, log)
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
	pub := fixture.NewPublisher(t, reg)

	// The receiver is down while the version is published, signed and
	// approved: the first deliveries are refused and retried.
	recv.setDown(true)
	ref := pub.Publish("", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	pub.Sign(ref, signer)
	pub.Attest(ref, signer, "review", `{"reviewer":"sec","result":"approved","level":"internal","time":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`)
	waitUntil(t, "the approval to be ingested", 30*time.Second, func() bool {
		v, err := srv.Store.Version(context.Background(), "acme", "acme/widget", "1.0.0")
		return err == nil && v.Reviewed
	})
	waitUntil(t, "a refused delivery", 30*time.Second, func() bool { refused, _ := recv.state(); return refused > 0 })
	recv.setDown(false)

	// The review is revoked, then the version yanked, then its tag moved.
	pub.Attest(ref, signer, "review", `{"reviewer":"sec","result":"revoked","level":"internal","time":"`+time.Now().Add(-30*time.Minute).UTC().Format(time.RFC3339)+`"}`)
	waitUntil(t, "the revocation to be ingested", 30*time.Second, func() bool {
		v, err := srv.Store.Version(context.Background(), "acme", "acme/widget", "1.0.0")
		return err == nil && !v.Reviewed
	})
	lc, _ := json.Marshal(map[string]any{"status": "yanked", "reason": "CVE-2026-7", "time": time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)})
	pub.Attest(ref, signer, "lifecycle", string(lc))
	waitUntil(t, "the yank to be ingested", 30*time.Second, func() bool {
		v, err := srv.Store.Version(context.Background(), "acme", "acme/widget", "1.0.0")
		return err == nil && v.Lifecycle == "yanked"
	})
	pub.PublishForce("", fixture.Ext{Name: "acme/widget", Version: "1.0.0", Files: map[string]string{"other.txt": "moved"}})
	// The control list (issue 13's kill switch) tells the hook what it
	// newly blocks; told twice, the subscriber still hears it once.
	blocked := []index.BlockedVersion{{Tenant: "acme", Name: "acme/widget", Version: "1.0.0", Digest: strings.SplitN(ref, "@", 2)[1],
		Visibility: store.Private, Reason: "malware", Sequence: 7}}
	for range 2 {
		if err := srv.Webhook.Ingester.Subscriptions.ControlBlocked(context.Background(), blocked); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]int{}
	for _, typ := range index.EventTypes {
		want[index.CloudEventType(typ)] = 1
	}
	waitUntil(t, "one event of each type", 60*time.Second, func() bool { return fmt.Sprint(recv.byType()) == fmt.Sprint(want) })

	// The dead letter of the broken subscriber, after its 3 attempts.
	admin := func(tenant, role string) string {
		tok, rec, err := index.NewToken(tenant, []string{role})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.PutToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	opsAdmin, acmeAdmin := admin("ops", "admin"), admin("acme", "admin")
	var letters struct{ Items []store.DeadLetter }
	waitUntil(t, "the broken subscriber's dead letter", 60*time.Second, func() bool {
		letters.Items = nil
		return getJSON(t, base+"/api/v1/subscriptions/dead-letters", opsAdmin, &letters) == 200 && len(letters.Items) == 1
	})
	dl := letters.Items[0]
	if dl.Subscription != "broken" || dl.Attempts != 3 || dl.Type != index.CloudEventType(index.EventVersionPublished) ||
		!strings.Contains(dl.Error, "500") || dl.URL != broken.URL {
		t.Errorf("dead letter %+v", dl)
	}
	for who, code := range map[string]int{"": 401, acmeAdmin: 403} {
		if got := getJSON(t, base+"/api/v1/subscriptions/dead-letters", who, &letters); got != code {
			t.Errorf("dead letters for %q: %d, want %d", who, got, code)
		}
	}

	// Everything arrived once, signed, with the right subjects and data.
	recv.mu.Lock()
	for id, n := range recv.seen {
		if n != 1 {
			t.Errorf("event %s (%s) accepted %d times", id, recv.events[id].Type, n)
		}
	}
	var moved index.CloudEvent
	for _, e := range recv.events {
		if e.SpecVersion != "1.0" || e.Source != "https://index.example.com" || e.Subject != "acme/widget@1.0.0" || e.Data.Tenant != "acme" {
			t.Errorf("event %+v", e)
		}
		if e.Type == index.CloudEventType(index.EventTagMoved) {
			moved = e
		}
	}
	// globex's subscription heard nothing of acme's private version.
	if recv.paths["/globex"] != 0 || recv.paths["/"] != len(index.EventTypes) {
		t.Errorf("deliveries by path %v, want %d to / and none to globex's", recv.paths, len(index.EventTypes))
	}
	recv.mu.Unlock()
	if moved.Data.OldDigest != blocked[0].Digest || moved.Data.Digest == moved.Data.OldDigest {
		t.Errorf("tag.moved says %s → %s, want from %s", moved.Data.OldDigest, moved.Data.Digest, blocked[0].Digest)
	}

	// A forged delivery (another secret) and an altered one are rejected
	// by the receiver's check.
	body, _ := json.Marshal(moved)
	for _, sig := range []string{index.Sign("not-the-secret-at-all", body), index.Sign(subSecret, append(body, ' ')), "sha256=00", ""} {
		req, _ := http.NewRequest("POST", recv.srv.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set(index.SignatureHeader, sig)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a delivery signed %q: %v %v, want 401", sig, resp, err)
		}
	}
	if err := client.VerifySignature(subSecret, body, index.Sign(subSecret, body)); err != nil {
		t.Errorf("a genuine signature: %v", err)
	}
	if err := client.VerifySignature(subSecret, body, index.Sign("x"+subSecret, body)); !errors.Is(err, client.ErrBadSignature) {
		t.Errorf("a forged signature: %v", err)
	}
}

func getJSON(t *testing.T, url, token string, out any) int {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}
