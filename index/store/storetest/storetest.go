// Package storetest is the conformance suite every store driver passes, as
// distribution's driver testsuites are for its storage drivers.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// Run runs the suite; open returns a fresh, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := map[string]func(*testing.T, store.Store){
		"UpsertCreatesThenRefreshes":   upsertCreatesThenRefreshes,
		"MovedTagKeepsFirstDigest":     movedTagKeepsFirstDigest,
		"SearchTextFiltersAndPaging":   searchTextFiltersAndPaging,
		"SearchReturnsLatestPerName":   searchReturnsLatestPerName,
		"TenantsAndVisibilityFilter":   tenantsAndVisibilityFilter,
		"EventsAreDeduplicated":        eventsAreDeduplicated,
		"TokensRoundTrip":              tokensRoundTrip,
		"ConcurrentIngestIsIdempotent": concurrentIngestIsIdempotent,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ver(tenant, name, version, digest string, at time.Duration) *store.Version {
	return &store.Version{
		Tenant: tenant, Name: name, Version: version, Repository: "reg.example/" + name, Digest: digest,
		Kind: "Connector", Title: "Title of " + name, Description: "Sync accounts with " + name,
		Keywords: []string{"crm", "sync"}, License: "MIT", Factory: ">=2.0.0 <3.0.0", Visibility: store.Public,
		Signed: true, Descriptor: json.RawMessage(`{"kind":"Connector"}`), IngestedAt: t0.Add(at),
	}
}

// h binds a test and a store, so that calls fail the test on error.
type h struct {
	t *testing.T
	s store.Store
}

func (h h) upsert(v *store.Version) store.UpsertResult {
	h.t.Helper()
	r, err := h.s.UpsertVersion(context.Background(), v)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h h) versions(tenant, name string) []*store.Version {
	h.t.Helper()
	vs, err := h.s.Versions(context.Background(), tenant, name)
	if err != nil {
		h.t.Fatal(err)
	}
	return vs
}

func (h h) alerts(tenant string) []*store.Alert {
	h.t.Helper()
	a, err := h.s.Alerts(context.Background(), tenant)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h h) mark(id string) bool {
	h.t.Helper()
	ok, err := h.s.MarkEvent(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return ok
}

func upsertCreatesThenRefreshes(t *testing.T, s store.Store) {
	H := h{t, s}
	v := ver("acme", "acme/crm", "1.0.0", "sha256:aaa", 0)
	if r := H.upsert(v); !r.Created || r.Moved {
		t.Fatalf("first upsert: %+v", r)
	}
	v2 := ver("acme", "acme/crm", "1.0.0", "sha256:aaa", time.Minute)
	v2.Reviewed, v2.Allowed, v2.Decision = true, true, json.RawMessage(`{"allowed":true}`)
	if r := H.upsert(v2); r.Created || !r.Updated || r.Moved {
		t.Fatalf("re-ingest of the same digest: %+v", r)
	}
	at, err := s.VersionAt(context.Background(), "acme", "reg.example/acme/crm", "1.0.0")
	if err != nil || at.Digest != "sha256:aaa" {
		t.Fatalf("VersionAt: %+v %v", at, err)
	}
	if _, err := s.VersionAt(context.Background(), "acme", "reg.example/acme/crm", "9.9.9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("VersionAt of a missing version: %v", err)
	}
	vs := H.versions("acme", "acme/crm")
	if len(vs) != 1 || !vs[0].Reviewed || !vs[0].Allowed || string(vs[0].Decision) != `{"allowed":true}` {
		t.Fatalf("stored %+v", vs)
	}
	got := vs[0]
	if got.Digest != "sha256:aaa" || got.Kind != "Connector" || len(got.Keywords) != 2 || !got.IngestedAt.Equal(t0.Add(time.Minute)) || string(got.Descriptor) != `{"kind":"Connector"}` {
		t.Fatalf("round trip lost fields: %+v", got)
	}
}

func movedTagKeepsFirstDigest(t *testing.T, s store.Store) {
	H := h{t, s}
	H.upsert(ver("acme", "acme/crm", "1.0.0", "sha256:first", 0))
	r := H.upsert(ver("acme", "acme/crm", "1.0.0", "sha256:second", time.Minute))
	if !r.Moved || r.Alert == nil || r.Alert.OldDigest != "sha256:first" || r.Alert.NewDigest != "sha256:second" {
		t.Fatalf("moved tag: %+v", r)
	}
	// The same move seen again (a duplicate event) raises no second alert.
	if r := H.upsert(ver("acme", "acme/crm", "1.0.0", "sha256:second", 2*time.Minute)); !r.Moved || r.Alert != nil {
		t.Fatalf("repeated move: %+v", r)
	}
	vs := H.versions("acme", "acme/crm")
	if len(vs) != 1 || vs[0].Digest != "sha256:first" {
		t.Fatalf("the first digest must stay: %+v", vs)
	}
	alerts := H.alerts("acme")
	if len(alerts) != 1 || alerts[0].Type != store.AlertTagMoved || alerts[0].ID == 0 {
		t.Fatalf("alerts %+v", alerts)
	}
	if other := H.alerts("globex"); len(other) != 0 {
		t.Fatalf("another tenant sees %d alerts", len(other))
	}
}

func searchTextFiltersAndPaging(t *testing.T, s store.Store) {
	H := h{t, s}
	for i := 0; i < 25; i++ {
		v := ver("acme", fmt.Sprintf("acme/ext%02d", i), "1.0.0", fmt.Sprintf("sha256:%02d", i), time.Duration(i)*time.Second)
		if i%5 == 0 {
			v.Kind, v.Description, v.Keywords = "Agent", "Reviews pull requests", []string{"review"}
			v.Reviewed = true
		}
		if i == 7 {
			v.License = "Apache-2.0"
		}
		H.upsert(v)
	}
	yes := true
	cases := []struct {
		q     store.Query
		total int
	}{
		{store.Query{}, 25},
		{store.Query{Text: "pull requests"}, 5},
		{store.Query{Text: "PULL"}, 5},
		{store.Query{Text: "acme/ext07"}, 1},
		{store.Query{Name: "acme/ext07"}, 1},
		{store.Query{Name: "acme/ext0"}, 0},
		{store.Query{Text: "review", Kind: "Agent"}, 5},
		{store.Query{Kind: "Connector", License: "Apache-2.0"}, 1},
		{store.Query{Reviewed: &yes}, 5},
		{store.Query{Publisher: "acme"}, 25},
		{store.Query{Publisher: "globex"}, 0},
		{store.Query{Text: "100%"}, 0},
	}
	for _, c := range cases {
		got, total := mustSearch(t, s, c.q)
		if total != c.total || len(got) != min(c.total, 20) {
			t.Errorf("%+v: %d results of %d, want %d", c.q, len(got), total, c.total)
		}
	}
	page2, total := mustSearch(t, s, store.Query{Limit: 10, Offset: 20})
	if total != 25 || len(page2) != 5 || page2[0].Name != "acme/ext20" {
		t.Fatalf("page 3 of 10: %d of %d, first %v", len(page2), total, page2)
	}
}

func mustSearch(t *testing.T, s store.Store, q store.Query) ([]*store.Version, int) {
	t.Helper()
	got, total, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return got, total
}

func searchReturnsLatestPerName(t *testing.T, s store.Store) {
	H := h{t, s}
	H.upsert(ver("acme", "acme/crm", "1.0.0", "sha256:1", 0))
	H.upsert(ver("acme", "acme/crm", "1.1.0", "sha256:2", time.Hour))
	H.upsert(ver("acme", "acme/crm", "0.9.0", "sha256:0", -time.Hour))
	got, total := mustSearch(t, s, store.Query{Text: "crm"})
	if total != 1 || got[0].Version != "1.1.0" {
		t.Fatalf("latest per name: %d %+v", total, got)
	}
	if vs := H.versions("acme", "acme/crm"); len(vs) != 3 || vs[0].Version != "1.1.0" {
		t.Fatalf("versions newest first: %+v", vs)
	}
}

func tenantsAndVisibilityFilter(t *testing.T, s store.Store) {
	H := h{t, s}
	a := ver("acme", "acme/secret", "1.0.0", "sha256:a", 0)
	a.Visibility = store.Private
	b := ver("globex", "globex/secret", "1.0.0", "sha256:b", 0)
	b.Visibility = store.Private
	c := ver("ops", "ops/tool", "1.0.0", "sha256:c", 0)
	c.Visibility = store.Internal
	d := ver("acme", "acme/open", "1.0.0", "sha256:d", 0)
	for _, v := range []*store.Version{a, b, c, d} {
		H.upsert(v)
	}
	if got, n := mustSearch(t, s, store.Query{Visibilities: []string{store.Public}}); n != 1 || got[0].Name != "acme/open" {
		t.Fatalf("public only: %+v", got)
	}
	if _, n := mustSearch(t, s, store.Query{Tenants: []string{"acme"}}); n != 2 {
		t.Fatalf("acme's: %d", n)
	}
	if got, n := mustSearch(t, s, store.Query{Text: "secret", Tenants: []string{"globex"}}); n != 1 || got[0].Tenant != "globex" {
		t.Fatalf("globex's secret: %+v", got)
	}
	viewers := []struct {
		v    store.Viewer
		want int
	}{
		{store.Viewer{}, 1},                               // anonymous: acme/open
		{store.Viewer{Tenant: "acme"}, 2},                 // + acme/secret
		{store.Viewer{Tenant: "globex"}, 2},               // + globex/secret
		{store.Viewer{Tenant: "ops"}, 2},                  // + its own internal ops/tool
		{store.Viewer{Tenant: "acme", Operator: true}, 3}, // + internal ops/tool
	}
	for _, c := range viewers {
		v := c.v
		if got, n := mustSearch(t, s, store.Query{Viewer: &v}); n != c.want {
			t.Errorf("viewer %+v sees %d (%v), want %d", c.v, n, got, c.want)
		}
	}
	// The same name in two tenants are two extensions.
	e := ver("globex", "acme/open", "1.0.0", "sha256:e", 0)
	H.upsert(e)
	if _, n := mustSearch(t, s, store.Query{Text: "acme/open"}); n != 2 {
		t.Fatalf("same name in two tenants: %d", n)
	}
}

func eventsAreDeduplicated(t *testing.T, s store.Store) {
	H := h{t, s}
	if first := H.mark("evt-1"); !first {
		t.Fatal("a new event was reported as seen")
	}
	if again := H.mark("evt-1"); again {
		t.Fatal("a repeated event was reported as new")
	}
	ctx := context.Background()
	if seen, err := s.EventSeen(ctx, "evt-1"); err != nil || !seen {
		t.Fatalf("marked event not seen: %v %v", seen, err)
	}
	if seen, err := s.EventSeen(ctx, "evt-2"); err != nil || seen {
		t.Fatalf("unmarked event seen: %v %v", seen, err)
	}
}

func tokensRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.PutToken(ctx, &store.Token{Hash: "h1", Tenant: "acme", Roles: []string{"reader", "publisher"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Tenant != "acme" || len(tok.Roles) != 2 || tok.Roles[1] != "publisher" {
		t.Fatalf("token %+v", tok)
	}
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing token: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// Replicas (or workers) ingesting the same events at once must leave one
// record and at most one alert per move.
func concurrentIngestIsIdempotent(t *testing.T, s store.Store) {
	H := h{t, s}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.UpsertVersion(ctx, ver("acme", "acme/race", "1.0.0", "sha256:first", 0))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.MarkEvent(ctx, "evt-race")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		H.upsert(ver("acme", "acme/race", "1.0.0", "sha256:moved", 0))
	}
	if vs := H.versions("acme", "acme/race"); len(vs) != 1 || vs[0].Digest != "sha256:first" {
		t.Fatalf("after concurrent ingest: %+v", vs)
	}
	if alerts := H.alerts("acme"); len(alerts) != 1 {
		t.Fatalf("%d alerts for one move", len(alerts))
	}
}
