package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// usageTests are the suite's usage cases (store.UsageStore), run by Run.
var usageTests = map[string]func(*testing.T, store.Store){
	"UsageDuplicatesCountOnce":          usageDuplicatesCountOnce,
	"UsageSameIDAcrossMonthsCountsOnce": usageSameIDAcrossMonths,
	"UsageLateAndOutOfOrderAreHarmless": usageLateAndOutOfOrder,
	"UsageVisibility":                   usageVisibility,
	"UsageMonthlySeatsAndFilters":       usageMonthlySeatsAndFilters,
	"UsageEventsInTimeOrder":            usageEventsInTimeOrder,
	"UsageConcurrentBatchesCountOnce":   usageConcurrentBatches,
	"UsageNameOwner":                    usageNameOwner,
}

// u0 is a day in the middle of a month: usage tests move around it.
var u0 = time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC)

// usageEvent is an install of acme/crm@1.0.0 (owned by tenant acme) by
// tenant at u0+at.
func usageEvent(id, tenant string, at time.Duration) *store.UsageEvent {
	return &store.UsageEvent{Source: "test", ID: id, At: u0.Add(at), Tenant: tenant, Owner: "acme", Publisher: "acme",
		Name: "acme/crm", Version: "1.0.0", Digest: "sha256:aaa", Type: store.UsageInstall, Quantity: 1}
}

func (h h) record(events ...*store.UsageEvent) []store.UsageRecorded {
	h.t.Helper()
	out, err := h.s.RecordUsage(context.Background(), events)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(out) != len(events) {
		h.t.Fatalf("RecordUsage answered %d outcomes for %d events", len(out), len(events))
	}
	return out
}

func (h h) usage(q store.UsageQuery) []store.UsageRow {
	h.t.Helper()
	if q.Viewer == (store.UsageViewer{}) {
		q.Viewer.All = true
	}
	rows, err := h.s.Usage(context.Background(), q)
	if err != nil {
		h.t.Fatal(err)
	}
	return rows
}

func duplicates(out []store.UsageRecorded) (n int) {
	for _, o := range out {
		if o.Duplicate {
			n++
		}
	}
	return n
}

func usageDuplicatesCountOnce(t *testing.T, s store.Store) {
	H := h{t, s}
	a, b := usageEvent("e1", "globex", 0), usageEvent("e2", "globex", time.Minute)
	if out := H.record(a, b, usageEvent("e1", "globex", 0)); duplicates(out) != 1 || !out[2].Duplicate {
		t.Fatalf("a batch holding e1 twice: %+v", out)
	}
	if out := H.record(usageEvent("e1", "globex", 0), usageEvent("e2", "globex", time.Minute)); duplicates(out) != 2 {
		t.Fatalf("a batch sent again: %+v", out)
	}
	// The same id from another source is another event.
	other := usageEvent("e1", "globex", 0)
	other.Source = "other"
	if out := H.record(other); duplicates(out) != 0 {
		t.Fatalf("e1 of another source taken for a duplicate: %+v", out)
	}
	// The same source and id from another tenant is that tenant's event.
	if out := H.record(usageEvent("e1", "initech", 0)); duplicates(out) != 0 {
		t.Fatalf("initech's e1 taken for globex's: %+v", out)
	}
	rows := H.usage(store.UsageQuery{Tenant: "globex"})
	want := []store.UsageRow{{Period: "2026-11-14", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Installs: 3, Events: 3}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("usage after duplicates:\n got %+v\nwant %+v", rows, want)
	}
	var raw int
	if err := s.UsageEvents(context.Background(), store.UsageEventQuery{}, func(*store.UsageEvent) error { raw++; return nil }); err != nil || raw != 4 {
		t.Fatalf("raw events: %d, %v; want 4", raw, err)
	}
}

// usageSameIDAcrossMonths: an event is its tenant, source and id whatever
// its time (issue 12), so a resend whose time moved into the next month
// (a client that leaves time out and retries across midnight at a
// month's end, or a replay with a changed time) is a duplicate, in a later
// batch and in the same one; the key stays the tenant's alone.
func usageSameIDAcrossMonths(t *testing.T, s store.Store) {
	H := h{t, s}
	endOfOct := time.Date(2026, 10, 31, 23, 59, 30, 0, time.UTC)
	at := func(id, tenant string, when time.Time) *store.UsageEvent {
		e := usageEvent(id, tenant, 0)
		e.At = when
		return e
	}
	if out := H.record(at("m1", "globex", endOfOct)); duplicates(out) != 0 || out[0].Err != nil {
		t.Fatalf("the first send: %+v", out)
	}
	if out := H.record(at("m1", "globex", endOfOct.Add(40*time.Second))); !out[0].Duplicate {
		t.Fatalf("m1 resent with a time in november taken for a new event: %+v", out)
	}
	if out := H.record(at("m2", "globex", endOfOct), at("m2", "globex", u0)); out[0].Duplicate || !out[1].Duplicate {
		t.Fatalf("m2 twice in one batch, october and november: %+v", out)
	}
	if out := H.record(at("m1", "initech", u0)); out[0].Duplicate {
		t.Fatalf("initech's m1 taken for globex's: %+v", out)
	}
	var installs int64
	for _, r := range H.usage(store.UsageQuery{Tenant: "globex", Granularity: store.Monthly}) {
		installs += r.Installs
	}
	if installs != 2 {
		t.Fatalf("globex's installs: %d, want 2 (m1 and m2 once each)", installs)
	}
	var raw int
	if err := s.UsageEvents(context.Background(), store.UsageEventQuery{}, func(*store.UsageEvent) error { raw++; return nil }); err != nil || raw != 3 {
		t.Fatalf("raw events: %d, %v; want 3", raw, err)
	}
}

func usageLateAndOutOfOrder(t *testing.T, s store.Store) {
	H := h{t, s}
	// Three days of events sent newest first, then one of the first day
	// arriving a week late.
	onTime := func(e *store.UsageEvent) *store.UsageEvent { e.ReceivedAt = e.At.Add(time.Second); return e }
	H.record(onTime(usageEvent("d3", "globex", 48*time.Hour)), onTime(usageEvent("d2", "globex", 24*time.Hour)))
	H.record(onTime(usageEvent("d1", "globex", 0)))
	late := usageEvent("d1-late", "globex", time.Hour)
	late.ReceivedAt = u0.Add(7 * 24 * time.Hour)
	H.record(late)
	rows := H.usage(store.UsageQuery{})
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Period] = r.Installs
	}
	want := map[string]int64{"2026-11-14": 2, "2026-11-15": 1, "2026-11-16": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("installs by day: got %v want %v", got, want)
	}
	if rows[0].Period != "2026-11-14" || rows[2].Period != "2026-11-16" {
		t.Fatalf("rows not in period order: %+v", rows)
	}
	// Late events keep the time they happened and say when they came.
	var seen []string
	err := s.UsageEvents(context.Background(), store.UsageEventQuery{ReceivedFrom: u0.Add(72 * time.Hour)}, func(e *store.UsageEvent) error {
		seen = append(seen, e.ID)
		if !e.At.Equal(u0.Add(time.Hour)) || !e.ReceivedAt.Equal(late.ReceivedAt) {
			t.Errorf("late event read back as at %v received %v", e.At, e.ReceivedAt)
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(seen, []string{"d1-late"}) {
		t.Fatalf("events received after the first day: %v, %v", seen, err)
	}
}

// usageVisibility: tenant globex and tenant initech use acme's extension
// and initech's own; each tenant sees its own usage, the publisher the
// usage of its extensions by every tenant, the operator all, and an
// anonymous viewer nothing, whatever the filters say.
func usageVisibility(t *testing.T, s store.Store) {
	H := h{t, s}
	own := usageEvent("i1", "initech", 0)
	own.Owner, own.Publisher, own.Name = "initech", "initech", "initech/tool"
	H.record(usageEvent("g1", "globex", 0), usageEvent("n1", "initech", 0), own)
	tenants := func(rows []store.UsageRow) (out []string) {
		for _, r := range rows {
			out = append(out, r.Tenant+":"+r.Name)
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    store.UsageQuery
		want []string
	}{
		{"operator", store.UsageQuery{Viewer: store.UsageViewer{All: true}}, []string{"globex:acme/crm", "initech:acme/crm", "initech:initech/tool"}},
		{"globex", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex"}}, []string{"globex:acme/crm"}},
		{"globex as publisher owns nothing", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex", Publisher: true}}, []string{"globex:acme/crm"}},
		{"globex asking for initech", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex"}, Tenant: "initech"}, nil},
		{"globex asking for initech's publisher", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex", Publisher: true}, Publisher: "initech"}, nil},
		{"globex asking for acme/crm", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex", Publisher: true}, Name: "acme/crm"}, []string{"globex:acme/crm"}},
		{"acme as publisher", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "acme", Publisher: true}}, []string{"globex:acme/crm", "initech:acme/crm"}},
		{"acme as reader", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "acme"}}, nil},
		{"initech as publisher", store.UsageQuery{Viewer: store.UsageViewer{Tenant: "initech", Publisher: true}}, []string{"initech:acme/crm", "initech:initech/tool"}},
		{"anonymous", store.UsageQuery{Viewer: store.UsageViewer{Publisher: true}}, nil},
	} {
		rows, err := s.Usage(context.Background(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := tenants(rows); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s sees %v, want %v", c.name, got, c.want)
		}
	}
}

func usageMonthlySeatsAndFilters(t *testing.T, s store.Store) {
	H := h{t, s}
	seats := func(id string, at time.Duration, n int64) *store.UsageEvent {
		e := usageEvent(id, "globex", at)
		e.Type, e.Quantity = store.UsageSeats, n
		return e
	}
	pull := usageEvent("p1", "globex", 2*time.Hour)
	pull.Type = store.UsagePull
	v2 := usageEvent("v2", "globex", 0)
	v2.Version = "2.0.0"
	nextMonth := usageEvent("dec", "globex", 20*24*time.Hour) // 2026-12-04
	H.record(seats("s1", 0, 10), seats("s2", time.Hour, 25), seats("s3", 24*time.Hour, 5), pull, usageEvent("i1", "globex", 0), v2, nextMonth)
	month := H.usage(store.UsageQuery{Granularity: store.Monthly})
	want := []store.UsageRow{
		{Period: "2026-11", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Pulls: 1, Installs: 1, Seats: 25, Events: 5},
		{Period: "2026-11", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "2.0.0", Installs: 1, Events: 1},
		{Period: "2026-12", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Installs: 1, Events: 1},
	}
	if !reflect.DeepEqual(month, want) {
		t.Fatalf("monthly:\n got %+v\nwant %+v", month, want)
	}
	// A month bound within a month counts the days from it.
	fromDay := H.usage(store.UsageQuery{Granularity: store.Monthly, From: u0.Add(24 * time.Hour)})
	wantFrom := []store.UsageRow{
		{Period: "2026-11", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Seats: 5, Events: 1},
		{Period: "2026-12", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Installs: 1, Events: 1},
	}
	if !reflect.DeepEqual(fromDay, wantFrom) {
		t.Fatalf("monthly from the 15th:\n got %+v\nwant %+v", fromDay, wantFrom)
	}
	whole := H.usage(store.UsageQuery{Granularity: store.Monthly, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	if !reflect.DeepEqual(whole, want[:2]) {
		t.Fatalf("November by month:\n got %+v\nwant %+v", whole, want[:2])
	}
	// From is inclusive and To exclusive, by day.
	day := H.usage(store.UsageQuery{From: u0.Add(24 * time.Hour), To: u0.Add(48 * time.Hour), Name: "acme/crm", Publisher: "acme", Tenant: "globex"})
	if len(day) != 1 || day[0].Period != "2026-11-15" || day[0].Seats != 5 || day[0].Events != 1 {
		t.Fatalf("one day: %+v", day)
	}
	if rows := H.usage(store.UsageQuery{Name: "acme/other"}); len(rows) != 0 {
		t.Fatalf("another name: %+v", rows)
	}
	if _, err := s.Usage(context.Background(), store.UsageQuery{Viewer: store.UsageViewer{All: true}, Granularity: "week"}); err == nil {
		t.Fatal("granularity week accepted")
	}
	bad := usageEvent("bad", "globex", 0)
	bad.Type = "download"
	if _, err := s.RecordUsage(context.Background(), []*store.UsageEvent{bad}); err == nil {
		t.Fatal("type download recorded")
	}
}

func usageEventsInTimeOrder(t *testing.T, s store.Store) {
	H := h{t, s}
	H.record(usageEvent("c", "globex", 3*time.Hour), usageEvent("a", "globex", time.Hour), usageEvent("b", "initech", 2*time.Hour),
		usageEvent("old", "globex", -40*24*time.Hour))
	var got []string
	err := s.UsageEvents(context.Background(), store.UsageEventQuery{Publisher: "acme", From: u0, To: u0.Add(24 * time.Hour)}, func(e *store.UsageEvent) error {
		got = append(got, e.ID)
		return nil
	})
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("events of the day: %v, %v", got, err)
	}
	got = nil
	s.UsageEvents(context.Background(), store.UsageEventQuery{Tenant: "initech"}, func(e *store.UsageEvent) error {
		got = append(got, e.ID)
		if e.Digest != "sha256:aaa" || e.Owner != "acme" || e.Type != store.UsageInstall || e.Quantity != 1 {
			t.Errorf("round trip lost fields: %+v", e)
		}
		return nil
	})
	if !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("initech's events: %v", got)
	}
	stop := fmt.Errorf("stop")
	n := 0
	if err := s.UsageEvents(context.Background(), store.UsageEventQuery{}, func(*store.UsageEvent) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn's error did not stop the walk: %v after %d", err, n)
	}
}

// usageConcurrentBatches: overlapping batches sent at once (a sender
// retrying while its first attempt is still running) count each event once
// and never deadlock.
func usageConcurrentBatches(t *testing.T, s store.Store) {
	const senders, events = 6, 300
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for w := range senders {
		wg.Go(func() {
			batch := make([]*store.UsageEvent, 0, events)
			for i := range events {
				// Each sender sends the same events in another order,
				// across two tenants and days.
				j := (i*7 + w*31) % events
				batch = append(batch, usageEvent(fmt.Sprint("c", j), []string{"globex", "initech"}[j%2], time.Duration(j%3)*24*time.Hour))
			}
			if _, err := s.RecordUsage(context.Background(), batch); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int64
	for _, r := range (h{t, s}).usage(store.UsageQuery{Granularity: store.Monthly}) {
		total += r.Installs
	}
	if total != events {
		t.Fatalf("%d senders of the same %d events counted %d", senders, events, total)
	}
}

func usageNameOwner(t *testing.T, s store.Store) {
	if _, err := s.NameOwner(context.Background(), "acme/crm"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("owner of an unclaimed name: %v", err)
	}
	if _, err := s.ClaimName(context.Background(), "acme/crm", "acme", "reg.example/acme/crm"); err != nil {
		t.Fatal(err)
	}
	o, err := s.NameOwner(context.Background(), "acme/crm")
	if err != nil || o.Tenant != "acme" || o.Repository != "reg.example/acme/crm" {
		t.Fatalf("owner: %+v %v", o, err)
	}
}
