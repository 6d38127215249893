package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

func install(id string, at time.Time) *store.UsageEvent {
	return &store.UsageEvent{Source: "test", ID: id, At: at, Tenant: "globex", Owner: "acme", Publisher: "acme",
		Name: "acme/crm", Version: "1.0.0", Digest: "sha256:aaa", Type: store.UsageInstall, Quantity: 1}
}

// TestUsagePartitionsDetachAMonth follows the operator procedure of
// docs/billing.md on PostgreSQL: each month's events land in a partition of
// their own, created on first use; a detached month keeps its rows out of
// reach, and an event for it is refused alone while the rest of its batch
// lands, by the handle that knew the partition attached and by a new one.
func TestUsagePartitionsDetachAMonth(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresSchema(t)
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	oct, nov := time.Date(2026, 10, 31, 23, 59, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if out, err := s.RecordUsage(ctx, []*store.UsageEvent{install("o1", oct), install("n1", nov)}); err != nil || out[0].Err != nil || out[1].Err != nil {
		t.Fatalf("record: %+v %v", out, err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var octRows, novRows int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM usage_events_202610), (SELECT COUNT(*) FROM usage_events_202611)`).Scan(&octRows, &novRows); err != nil || octRows != 1 || novRows != 1 {
		t.Fatalf("rows per partition: october %d, november %d, %v", octRows, novRows, err)
	}
	if _, err := db.Exec(`ALTER TABLE usage_events DETACH PARTITION usage_events_202610`); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"the handle that created it", "a new handle"} {
		if h == "a new handle" {
			s.Close()
			if s, err = store.Open(ctx, url); err != nil {
				t.Fatal(err)
			}
		}
		out, err := s.RecordUsage(ctx, []*store.UsageEvent{install("o2-"+h, oct), install("n2-"+h, nov)})
		if err != nil {
			t.Fatalf("%s: a batch with an archived month failed whole: %v", h, err)
		}
		if !errors.Is(out[0].Err, store.ErrUsageMonthDetached) || out[1].Err != nil || out[1].Duplicate {
			t.Fatalf("%s: %+v", h, out)
		}
	}
	var raw int
	s.UsageEvents(ctx, store.UsageEventQuery{}, func(*store.UsageEvent) error { raw++; return nil })
	if raw != 3 {
		t.Fatalf("%d events readable after october was detached, want november's 3", raw)
	}
	// Reattached, the month counts again.
	if _, err := db.Exec(`ALTER TABLE usage_events ATTACH PARTITION usage_events_202610 FOR VALUES FROM (202610) TO (202611)`); err != nil {
		t.Fatal(err)
	}
	if out, err := s.RecordUsage(ctx, []*store.UsageEvent{install("o3", oct)}); err != nil || out[0].Err != nil {
		t.Fatalf("after reattaching: %+v %v", out, err)
	}
	// The events refused while october was detached left no key behind:
	// sent again now, they count (a swallowed resend would lose them).
	out, err := s.RecordUsage(ctx, []*store.UsageEvent{install("o2-the handle that created it", oct), install("o2-a new handle", oct)})
	if err != nil || out[0].Err != nil || out[0].Duplicate || out[1].Err != nil || out[1].Duplicate {
		t.Fatalf("the events refused for a detached month, sent again after it was reattached: %+v %v", out, err)
	}
	rows, err := s.Usage(ctx, store.UsageQuery{Viewer: store.UsageViewer{All: true}, Granularity: store.Monthly})
	if err != nil || len(rows) != 2 || rows[0].Period != "2026-10" || rows[0].Installs != 4 {
		t.Fatalf("october's installs after the resends: %+v %v; want 4 (o1, o3 and the two resent)", rows, err)
	}
}

// December's partition ends at January of the next year.
func TestUsagePartitionOfDecember(t *testing.T) {
	ctx := context.Background()
	s := storetest.Postgres(t)
	dec, jan := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)
	out, err := s.RecordUsage(ctx, []*store.UsageEvent{install("d", dec), install("j", jan)})
	if err != nil || out[0].Err != nil || out[1].Err != nil {
		t.Fatalf("%+v %v", out, err)
	}
	rows, err := s.Usage(ctx, store.UsageQuery{Viewer: store.UsageViewer{All: true}, Granularity: store.Monthly})
	if err != nil || len(rows) != 2 || rows[0].Period != "2026-12" || rows[1].Period != "2027-01" {
		t.Fatalf("%+v %v", rows, err)
	}
}
