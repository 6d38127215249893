// Package storetest is the conformance suite every store driver passes, as
// distribution's driver testsuites are for its storage drivers.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
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
		"VersionsNewestFirst":          versionsNewestFirst,
		"ChangesFeedWritesInOrder":     changesFeedWritesInOrder,
		"ChangesFeedSkipsNothing":      changesFeedSkipsNothingUnderConcurrency,
		"EventsAreDeduplicated":        eventsAreDeduplicated,
		"TokensRoundTrip":              tokensRoundTrip,
		"TokensListExpireAndRevoke":    tokensListExpireAndRevoke,
		"ConcurrentIngestIsIdempotent": concurrentIngestIsIdempotent,
		"VersionsHighestSemVerFirst":   versionsHighestSemVerFirst,
		"NameHasOneOwner":              nameHasOneOwner,
		"AlertsAreRecordedOnce":        alertsAreRecordedOnce,
	}
	maps.Copy(tests, usageTests)
	maps.Copy(tests, statementTests)
	maps.Copy(tests, controlTests)
	maps.Copy(tests, readmeTests)
	maps.Copy(tests, generationTests)
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
	v2.EvidenceDigests = `{"sig":"sha256:bbb"}`
	if r := H.upsert(v2); r.Created || !r.Updated || r.Moved {
		t.Fatalf("re-ingest of the same digest: %+v", r)
	}
	tagged, err := s.Tagged(context.Background(), "acme", "reg.example/acme/crm")
	if err != nil || len(tagged) != 1 || tagged["1.0.0"].Digest != "sha256:aaa" || tagged["1.0.0"].EvidenceDigests != v2.EvidenceDigests {
		t.Fatalf("Tagged: %+v %v", tagged, err)
	}
	if other, err := s.Tagged(context.Background(), "globex", "reg.example/acme/crm"); err != nil || len(other) != 0 {
		t.Fatalf("Tagged for another tenant: %+v %v", other, err)
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

func versionsNewestFirst(t *testing.T, s store.Store) {
	H := h{t, s}
	H.upsert(ver("acme", "acme/crm", "1.0.0", "sha256:1", 0))
	H.upsert(ver("acme", "acme/crm", "1.1.0", "sha256:2", time.Hour))
	H.upsert(ver("acme", "acme/crm", "0.9.0", "sha256:0", -time.Hour))
	if vs := H.versions("acme", "acme/crm"); len(vs) != 3 || vs[0].Version != "1.1.0" || vs[2].Version != "0.9.0" {
		t.Fatalf("versions newest first: %+v", vs)
	}
	v, err := s.Version(context.Background(), "acme", "acme/crm", "1.1.0")
	if err != nil || v.Digest != "sha256:2" || string(v.Descriptor) != `{"kind":"Connector"}` {
		t.Fatalf("Version: %+v %v", v, err)
	}
	if _, err := s.Version(context.Background(), "globex", "acme/crm", "1.1.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's version: %v", err)
	}
}

// The change feed carries every create and refresh once, in write order,
// and nothing for a moved tag (the stored version does not change).
func changesFeedWritesInOrder(t *testing.T, s store.Store) {
	H := h{t, s}
	ctx := context.Background()
	// The drivers count their writes for the catalog (catalog.LocalWriteCounter).
	local, ok := s.(interface{ LocalWrites() int64 })
	if !ok {
		t.Fatalf("%T counts no local writes: the catalog would wait MaxLag to see a write of its own process", s)
	}
	before := local.LocalWrites()
	H.upsert(ver("acme", "acme/a", "1.0.0", "sha256:a", 0))
	H.upsert(ver("globex", "globex/b", "1.0.0", "sha256:b", 0))
	H.upsert(ver("acme", "acme/a", "1.0.0", "sha256:moved", time.Minute))
	refreshed := ver("acme", "acme/a", "1.0.0", "sha256:a", 2*time.Minute)
	refreshed.Reviewed = true
	H.upsert(refreshed)
	if n := local.LocalWrites() - before; n != 3 {
		t.Fatalf("LocalWrites counted %d writes, want 3 (two creates, one refresh)", n)
	}
	all, err := s.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "globex/b" || all[1].Name != "acme/a" || !all[1].Reviewed || all[1].Seq <= all[0].Seq {
		t.Fatalf("changes: %+v", all)
	}
	if all[1].Descriptor != nil || all[1].Title != "Title of acme/a" || len(all[1].Keywords) != 2 {
		t.Fatalf("the feed carries headers, not documents: %+v", all[1])
	}
	rest, err := s.Changes(ctx, all[0].Seq, 1)
	if err != nil || len(rest) != 1 || rest[0].Name != "acme/a" {
		t.Fatalf("changes after %d: %+v %v", all[0].Seq, rest, err)
	}
	if none, err := s.Changes(ctx, all[1].Seq, 100); err != nil || len(none) != 0 {
		t.Fatalf("changes after the last: %+v %v", none, err)
	}
}

// Writers racing must never let the feed skip a write: a reader that has
// seen seq n has seen every write numbered below n.
func changesFeedSkipsNothingUnderConcurrency(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.UpsertVersion(ctx, ver("acme", fmt.Sprintf("acme/w%d", w), fmt.Sprintf("1.%d.0", i), fmt.Sprintf("sha256:%d-%d", w, i), 0)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var after int64
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		vs, err := s.Changes(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			seen[v.Name+"@"+v.Version] = true
			after = v.Seq
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One last read after all writers are done.
	vs, err := s.Changes(ctx, after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		seen[v.Name+"@"+v.Version] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("the feed delivered %d of %d writes", len(seen), writers*each)
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

// Tokens list by tenant, keep their expiry, and revoke by ID once.
func tokensListExpireAndRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	hash := func(c string) string { return strings.Repeat(c, 64) }
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond).UTC()
	for _, tok := range []*store.Token{
		{Hash: hash("a"), Tenant: "acme", Roles: []string{"reader"}, CreatedAt: time.Unix(100, 0)},
		{Hash: hash("b"), Tenant: "acme", Roles: []string{"admin"}, CreatedAt: time.Unix(200, 0), ExpiresAt: expires},
		{Hash: hash("c"), Tenant: "globex", Roles: []string{"reader"}, CreatedAt: time.Unix(300, 0)},
	} {
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	acme, err := s.Tokens(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(acme) != 2 || acme[0].ID != hash("b")[:store.TokenIDLength] || !acme[0].ExpiresAt.Equal(expires) || acme[1].Tenant != "acme" {
		t.Fatalf("acme's tokens: %+v", acme)
	}
	if all, err := s.Tokens(ctx, ""); err != nil || len(all) != 3 {
		t.Fatalf("all tokens: %d %v", len(all), err)
	}
	if st := acme[0].State(time.Now()); st != store.TokenActive {
		t.Fatalf("a token before its expiry is %s", st)
	}
	if st := acme[0].State(expires); st != store.TokenExpired {
		t.Fatalf("a token at its expiry is %s", st)
	}
	revoked, err := s.RevokeToken(ctx, hash("a")[:store.TokenIDLength])
	if err != nil || revoked.Tenant != "acme" || revoked.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	again, err := s.RevokeToken(ctx, hash("a")[:store.TokenIDLength])
	if err != nil || !again.RevokedAt.Equal(revoked.RevokedAt) {
		t.Fatalf("revoking again: %+v %v, want the first revocation kept", again, err)
	}
	if tok, err := s.Token(ctx, hash("a")); err != nil || tok.State(time.Now()) != store.TokenRevoked {
		t.Fatalf("a revoked token reads as %+v %v", tok, err)
	}
	if tok, err := s.Token(ctx, hash("c")); err != nil || tok.State(time.Now()) != store.TokenActive {
		t.Fatalf("another token after a revocation: %+v %v", tok, err)
	}
	for _, id := range []string{"dddddddddddddddd", "aaaa", "%%%%%%%%%%%%%%%%"} {
		if _, err := s.RevokeToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking %q: %v, want ErrNotFound", id, err)
		}
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

// Versions come highest SemVer first, whatever the ingest order: a
// re-ingest of 0.1.0 after 1.0.0 (a new signature) does not move it up,
// 1.10.0 is above 1.9.0 (not text order), a pre-release sits below its
// release; Latest prefers the highest stable release to a newer
// pre-release.
func versionsHighestSemVerFirst(t *testing.T, s store.Store) {
	H := h{t, s}
	H.upsert(ver("acme", "acme/crm", "0.1.0", "sha256:01", 0))
	H.upsert(ver("acme", "acme/crm", "1.9.0", "sha256:19", time.Minute))
	H.upsert(ver("acme", "acme/crm", "1.10.0", "sha256:110", 2*time.Minute))
	H.upsert(ver("acme", "acme/crm", "2.0.0-rc.1", "sha256:2rc", 3*time.Minute))
	H.upsert(ver("acme", "acme/crm", "1.10.0-beta", "sha256:110b", 4*time.Minute))
	resigned := ver("acme", "acme/crm", "0.1.0", "sha256:01", time.Hour)
	resigned.Reviewed = true
	if r := H.upsert(resigned); !r.Updated {
		t.Fatalf("re-ingest of 0.1.0: %+v", r)
	}
	var got []string
	vs := H.versions("acme", "acme/crm")
	for _, v := range vs {
		got = append(got, v.Version)
	}
	want := []string{"2.0.0-rc.1", "1.10.0", "1.10.0-beta", "1.9.0", "0.1.0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	if l := store.Latest(vs); l == nil || l.Version != "1.10.0" {
		t.Fatalf("latest %+v, want 1.10.0 (the highest stable)", l)
	}
	if l := store.Latest(vs[:1]); l.Version != "2.0.0-rc.1" {
		t.Fatalf("latest of pre-releases only: %s", l.Version)
	}
}

// The first repository to claim a name owns it; later claimants, from
// another repository or another tenant, get the owner back, not the name.
func nameHasOneOwner(t *testing.T, s store.Store) {
	ctx := context.Background()
	claim := func(tenant, repo string) *store.NameOwner {
		t.Helper()
		o, err := s.ClaimName(ctx, "connectsoft/widget", tenant, repo)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	first := claim("connectsoft", "reg.example/connectsoft/widget")
	if first.Tenant != "connectsoft" || first.Repository != "reg.example/connectsoft/widget" || first.ClaimedAt.IsZero() {
		t.Fatalf("first claim: %+v", first)
	}
	for _, c := range [][2]string{{"connectsoft", "reg.example/evil/connectsoft/widget"}, {"evil", "reg.example/evil/connectsoft/widget"}, {"connectsoft", "reg.example/connectsoft/widget"}} {
		if o := claim(c[0], c[1]); o.Tenant != first.Tenant || o.Repository != first.Repository {
			t.Fatalf("claim by %v changed the owner to %+v", c, o)
		}
	}
	// Concurrent first claims: exactly one wins, every claimant sees it.
	var wg sync.WaitGroup
	owners := make([]*store.NameOwner, 8)
	for i := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := s.ClaimName(ctx, "acme/race", "acme", fmt.Sprintf("reg.example/r%d/acme/race", i))
			if err != nil {
				t.Error(err)
				return
			}
			owners[i] = o
		}()
	}
	wg.Wait()
	for _, o := range owners {
		if o == nil || o.Repository != owners[0].Repository {
			t.Fatalf("concurrent claims saw different owners: %+v", owners)
		}
	}
}

func alertsAreRecordedOnce(t *testing.T, s store.Store) {
	H := h{t, s}
	a := &store.Alert{Tenant: "evil", Type: store.AlertIdentityMismatch, Name: "connectsoft/widget", Version: "1.0.0",
		Repository: "reg.example/evil/widget", NewDigest: "sha256:e", Message: "not bound"}
	for i, want := range []bool{true, false} {
		added, err := s.AddAlert(context.Background(), a)
		if err != nil || added != want {
			t.Fatalf("AddAlert %d: %v %v, want %v", i, added, err, want)
		}
	}
	if got := H.alerts("evil"); len(got) != 1 || got[0].Type != store.AlertIdentityMismatch || got[0].Message != "not bound" {
		t.Fatalf("alerts %+v", got)
	}
}
