package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// statementTests are the suite's cases of store.Statements, run by Run.
var statementTests = map[string]func(*testing.T, store.Store){
	"StatementClosesOnceUnderRace":      statementClosesOnceUnderRace,
	"SumUsageGroupsByTermsWindow":       sumUsageGroupsByTermsWindow,
	"PublisherVersionsAreTheOwnersOnly": publisherVersionsAreTheOwnersOnly,
}

// statementClosesOnceUnderRace: replicas closing the same period at once
// store one statement; every other gets ErrStatementClosed, and the
// stored one is the winner's, byte for byte.
func statementClosesOnceUnderRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CloseStatement(ctx, &store.ClosedStatement{Publisher: "acme", Period: "2026-11", Cutoff: u0,
				Body: []byte(fmt.Sprintf(`{"replica":%d}`, i)), Signature: fmt.Sprintf("sig%d", i), Signer: "fp"})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("replicas %d and %d both closed the period", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrStatementClosed):
			t.Fatalf("replica %d: %v, want ErrStatementClosed", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no replica closed the period")
	}
	cs, err := s.ClosedStatements(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || string(cs[0].Body) != fmt.Sprintf(`{"replica":%d}`, won) || cs[0].Signature != fmt.Sprintf("sig%d", won) ||
		!cs[0].Cutoff.Equal(u0) || cs[0].Reference != "" {
		t.Fatalf("stored %+v, want replica %d's", cs, won)
	}
	if err := s.SetStatementReference(ctx, "acme", "2026-11", "reg/statements@sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatementReference(ctx, "acme", "2026-10", "reg/x@sha256:abc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reference of a period never closed: %v", err)
	}
	if cs, _ := s.ClosedStatements(ctx, ""); len(cs) != 1 || cs[0].Reference != "reg/statements@sha256:abc" {
		t.Fatalf("after the push: %+v", cs)
	}
	if cs, _ := s.ClosedStatements(ctx, "other"); len(cs) != 0 {
		t.Fatalf("another publisher's closed statements: %+v", cs)
	}
}

// sumUsageGroupsByTermsWindow: events are summed per version, tenant,
// type and window; an event at a window's end belongs to the next; the
// time, arrival and publisher bounds hold.
func sumUsageGroupsByTermsWindow(t *testing.T, s store.Store) {
	h := h{t, s}
	month := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	change := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	received := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var events []*store.UsageEvent
	add := func(pub, name, tenant, typ string, q int64, at time.Time, recv time.Time) {
		events = append(events, &store.UsageEvent{Source: "test", ID: fmt.Sprint(len(events)), At: at, ReceivedAt: recv, Tenant: tenant,
			Owner: pub, Publisher: pub, Name: pub + "/" + name, Version: "1.0.0", Digest: "sha256:aaa", Type: typ, Quantity: q})
	}
	add("acme", "w", "t1", store.UsagePull, 1, month.Add(time.Hour), month.Add(time.Hour))
	add("acme", "w", "t1", store.UsagePull, 1, change.Add(-time.Nanosecond), change)
	add("acme", "w", "t1", store.UsagePull, 1, change, change)                  // the new window's first instant
	add("acme", "w", "t1", store.UsagePull, 1, change.Add(time.Hour), received) // arrived late
	add("acme", "w", "t1", store.UsageSeats, 10, month.Add(2*time.Hour), month.Add(2*time.Hour))
	add("acme", "w", "t1", store.UsageSeats, 7, month.Add(3*time.Hour), month.Add(3*time.Hour))
	add("acme", "w", "t2", store.UsageInstall, 3, month.Add(time.Hour), month.Add(time.Hour))
	add("acme", "x", "t1", store.UsagePull, 1, month.Add(time.Hour), month.Add(time.Hour)) // no terms
	// A whole day inside one window with one event on time and one late:
	// the day is read raw when the cutoff must leave the late one out.
	nov10 := month.AddDate(0, 0, 9)
	add("acme", "w", "t3", store.UsagePull, 1, nov10.Add(5*time.Hour), nov10.Add(5*time.Hour))
	add("acme", "w", "t3", store.UsagePull, 1, nov10.Add(6*time.Hour), received)
	add("acme", "w", "t1", store.UsagePull, 1, month.AddDate(0, 1, 0), month.AddDate(0, 1, 0)) // December
	add("acme", "w", "t1", store.UsagePull, 1, month.Add(-time.Nanosecond), month)             // October
	add("evil", "w", "t1", store.UsagePull, 1, month.Add(time.Hour), month.Add(time.Hour))     // another publisher
	h.record(events...)
	windows := []store.TermsWindow{
		{ID: 0, Name: "acme/w", Version: "1.0.0", From: month.AddDate(0, -3, 0), To: change},
		{ID: 1, Name: "acme/w", Version: "1.0.0", From: change},
	}
	sum := func(q store.UsageSumQuery) []store.UsageSum {
		q.Publisher, q.From, q.To, q.Windows = "acme", month, month.AddDate(0, 1, 0), windows
		out, err := s.SumUsage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			out[i].First = out[i].First.Truncate(24 * time.Hour) // the daily aggregate knows the day
		}
		slices.SortFunc(out, func(a, b store.UsageSum) int {
			return cmpStrings(a.Name, b.Name, a.Tenant, b.Tenant, a.Type, b.Type)*10 + (a.Window - b.Window)
		})
		return out
	}
	at := func(d time.Time) time.Time { return d.UTC().Truncate(24 * time.Hour) }
	want := []store.UsageSum{
		{Name: "acme/w", Version: "1.0.0", Tenant: "t1", Type: "pull", Window: 0, Quantity: 2, MaxQuantity: 1, First: at(month.Add(time.Hour))},
		{Name: "acme/w", Version: "1.0.0", Tenant: "t1", Type: "pull", Window: 1, Quantity: 2, MaxQuantity: 1, First: at(change)},
		{Name: "acme/w", Version: "1.0.0", Tenant: "t1", Type: "seats", Window: 0, Quantity: 17, MaxQuantity: 10, First: at(month.Add(2 * time.Hour))},
		{Name: "acme/w", Version: "1.0.0", Tenant: "t2", Type: "install", Window: 0, Quantity: 3, MaxQuantity: 3, First: at(month.Add(time.Hour))},
		{Name: "acme/w", Version: "1.0.0", Tenant: "t3", Type: "pull", Window: 0, Quantity: 2, MaxQuantity: 1, First: at(nov10)},
		{Name: "acme/x", Version: "1.0.0", Tenant: "t1", Type: "pull", Window: store.NoWindow, Quantity: 1, MaxQuantity: 1, First: at(month.Add(time.Hour))},
	}
	if got := sum(store.UsageSumQuery{}); !slices.Equal(got, want) {
		t.Fatalf("sums:\n%+v\nwant\n%+v", got, want)
	}
	// Received before December 1st: the late pulls are left out.
	want[1].Quantity, want[4].Quantity = 1, 1
	if got := sum(store.UsageSumQuery{ReceivedTo: month.AddDate(0, 1, 0)}); !slices.Equal(got, want) {
		t.Fatalf("sums received in November:\n%+v\nwant\n%+v", got, want)
	}
	// Received from December on: only the late pull.
	late := []store.UsageSum{{Name: "acme/w", Version: "1.0.0", Tenant: "t1", Type: "pull", Window: 1, Quantity: 1, MaxQuantity: 1, First: at(change.Add(time.Hour))},
		{Name: "acme/w", Version: "1.0.0", Tenant: "t3", Type: "pull", Window: 0, Quantity: 1, MaxQuantity: 1, First: at(nov10)}}
	if got := sum(store.UsageSumQuery{ReceivedFrom: month.AddDate(0, 1, 0)}); !slices.Equal(got, late) {
		t.Fatalf("sums received late:\n%+v\nwant\n%+v", got, late)
	}
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		switch {
		case pairs[i] < pairs[i+1]:
			return -1
		case pairs[i] > pairs[i+1]:
			return 1
		}
	}
	return 0
}

// publisherVersionsAreTheOwnersOnly: a publisher's versions, whole, and
// never another publisher's or a version of a name another repository owns.
func publisherVersionsAreTheOwnersOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := h{t, s}
	for _, v := range []*store.Version{
		ver("acme", "acme/crm", "1.0.0", "sha256:a", 0), ver("acme", "acme/crm", "1.1.0", "sha256:b", 1),
		ver("other", "other/crm", "1.0.0", "sha256:c", 2),
	} {
		v.Evidence = []byte(`{"attestations":[]}`)
		if _, err := s.ClaimName(ctx, v.Name, v.Tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		h.upsert(v)
	}
	// A version stored under a name whose owner is another repository.
	imp := ver("evil", "acme/crm", "9.0.0", "sha256:d", 3)
	imp.Repository = "reg.example/evil/crm"
	h.upsert(imp)
	vs, err := s.PublisherVersions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Tenant+" "+v.Name+"@"+v.Version)
		if string(v.Evidence) != `{"attestations":[]}` {
			t.Fatalf("%s read without its evidence", v.Name)
		}
	}
	if want := []string{"acme acme/crm@1.0.0", "acme acme/crm@1.1.0"}; !slices.Equal(got, want) {
		t.Fatalf("versions of acme %v, want %v", got, want)
	}
}

// SharedNamespace fills s with the namespace acme shared by two tenants,
// as names claimed one by one without a publishers: entry allow: acme/crm
// owned by tenant acme, acme/other by tenant globex, each priced at 2 EUR
// a pull (80 % to the publisher) and pulled 3 times at at by a customer of
// its own ("buyer-of-" + owner). It returns each name's owner.
func SharedNamespace(t testing.TB, s store.Store, at time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	terms := `{"attestations":[{"source":"attestation","predicateType":"https://connectsoft.io/marketplace/terms/v1","verified":true,"fingerprint":"fp",` +
		`"statement":{"predicateType":"https://connectsoft.io/marketplace/terms/v1","predicate":{"license":"MIT","pricing":{"model":"usage","price":2,"currency":"EUR"},` +
		`"revenueShare":{"publisher":80,"platform":20},"effectiveDate":"2020-01-01T00:00:00Z","time":"2020-01-01T00:00:00Z"}}}]}`
	owned := map[string]string{"acme/crm": "acme", "acme/other": "globex"}
	for name, tenant := range owned {
		v := &store.Version{Tenant: tenant, Name: name, Version: "1.0.0", Repository: "reg-" + tenant + "/" + name, Digest: "sha256:" + strings.Repeat("b", 64),
			Kind: "Connector", Visibility: store.Private, Evidence: json.RawMessage(terms)}
		if _, err := s.ClaimName(ctx, name, tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordUsage(ctx, []*store.UsageEvent{{Source: "test", ID: name, At: at, Tenant: "buyer-of-" + tenant, Owner: tenant, Publisher: "acme",
			Name: name, Version: "1.0.0", Digest: v.Digest, Type: store.UsagePull, Quantity: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	return owned
}
