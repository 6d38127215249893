package store_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/pressly/goose/v3"
)

// TestUsageRollupMatchesTheDailyAggregate is a differential test of the
// usage roll-ups (migration 0043): over random batches of events — sent
// twice in one batch and in later ones, late and out of order, across the
// October–November and November–December boundaries, a resend moved into
// another month — Store.Usage answers every query exactly as the former
// aggregation over usage_daily (the query Usage ran before the roll-ups,
// kept here as legacyUsage) and as a model computed in Go from the events
// the store accepted. The queries include tenants asking for another
// tenant's usage and a publisher asking for another's namespace, which
// must see nothing beyond their own. The first batch is large enough to
// be written in several statements per aggregate.
func TestUsageRollupMatchesTheDailyAggregate(t *testing.T) {
	for driver, open := range storetest.UsageDrivers() {
		t.Run(driver, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 7))
			s, db := open(t)
			ctx := context.Background()
			extensions := []struct{ owner, name string }{
				{"pubco", "pubco/crm"}, {"pubco", "pubco/erp"}, {"other", "other/tool"}, {"other", "other/lint"},
			}
			tenants := []string{"globex", "initech", "umbrella", "pubco", "other"}
			base := time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC) // to Dec 3
			var sent []*store.UsageEvent
			accepted := map[[3]string]*store.UsageEvent{} // tenant, source, id
			for batch := range 12 {
				n := 1 + rng.IntN(120)
				if batch == 0 {
					// More keys of usage_daily than one statement takes
					// (usageChunk): the aggregates in several chunks.
					n = 2500
				}
				events := make([]*store.UsageEvent, 0, n)
				for range n {
					if pool := len(sent) + len(events); pool > 0 && rng.IntN(6) == 0 {
						// The same event again, of an earlier batch or of
						// this one, sometimes at another time (a late retry
						// whose clock moved, even into another month): it
						// counts once, as first recorded.
						var e store.UsageEvent
						if i := rng.IntN(pool); i < len(sent) {
							e = *sent[i]
						} else {
							e = *events[i-len(sent)]
						}
						e.ReceivedAt = time.Time{}
						if rng.IntN(2) == 0 {
							e.At = e.At.Add(time.Duration(rng.IntN(20*24)-10*24) * time.Hour)
						}
						events = append(events, &e)
						continue
					}
					x := extensions[rng.IntN(len(extensions))]
					e := &store.UsageEvent{Source: "urn:" + strconv.Itoa(rng.IntN(2)), ID: fmt.Sprint(batch, "-", len(sent)+len(events)),
						At: base.Add(time.Duration(rng.IntN(35*24*60)) * time.Minute), Tenant: tenants[rng.IntN(len(tenants))],
						Owner: x.owner, Publisher: x.owner, Name: x.name, Version: fmt.Sprint("1.", rng.IntN(3), ".0"), Digest: "sha256:x"}
					switch rng.IntN(3) {
					case 0:
						e.Type, e.Quantity = store.UsagePull, 1
					case 1:
						e.Type, e.Quantity = store.UsageInstall, 1+int64(rng.IntN(4))
					default:
						e.Type, e.Quantity = store.UsageSeats, int64(rng.IntN(40))
					}
					events = append(events, e)
				}
				if rng.IntN(2) == 0 {
					// A late batch: the oldest events last.
					slices.SortFunc(events, func(a, b *store.UsageEvent) int { return b.At.Compare(a.At) })
				}
				out, err := s.RecordUsage(ctx, events)
				if err != nil {
					t.Fatal(err)
				}
				for i, e := range events {
					k := [3]string{e.Tenant, e.Source, e.ID}
					_, seen := accepted[k]
					if out[i].Err != nil || out[i].Duplicate != seen {
						t.Fatalf("batch %d, event %d (%s %s %s): outcome %+v, recorded before: %v", batch, i, e.Tenant, e.Source, e.ID, out[i], seen)
					}
					if !seen {
						accepted[k] = e
						sent = append(sent, e)
					}
				}
			}
			day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
			ranges := [][2]time.Time{
				{}, {day(11, 1), day(12, 1)}, {day(10, 1), day(12, 1)}, {day(11, 10), day(11, 20)},
				{day(10, 30), day(12, 2)}, {day(11, 1), {}}, {{}, day(11, 1)},
			}
			views := []struct {
				viewer                  store.UsageViewer
				publisher, name, tenant string
			}{
				{viewer: store.UsageViewer{All: true}},
				{viewer: store.UsageViewer{All: true}, name: "pubco/crm"},
				{viewer: store.UsageViewer{All: true}, tenant: "initech", publisher: "other"},
				{viewer: store.UsageViewer{Tenant: "globex"}},
				{viewer: store.UsageViewer{Tenant: "pubco"}},
				{viewer: store.UsageViewer{Tenant: "pubco", Publisher: true}},
				{viewer: store.UsageViewer{Tenant: "pubco", Publisher: true}, publisher: "pubco"},
				{viewer: store.UsageViewer{Tenant: "other", Publisher: true}, name: "other/tool"},
				// Attacks: another tenant's usage, another publisher's
				// namespace and extension, no tenant at all.
				{viewer: store.UsageViewer{Tenant: "globex"}, tenant: "initech"},
				{viewer: store.UsageViewer{Tenant: "globex", Publisher: true}, publisher: "pubco"},
				{viewer: store.UsageViewer{Tenant: "pubco", Publisher: true}, publisher: "other"},
				{viewer: store.UsageViewer{Tenant: "pubco", Publisher: true}, name: "other/lint", tenant: "umbrella"},
				{viewer: store.UsageViewer{Publisher: true}},
			}
			var compared, nonEmpty int
			for _, v := range views {
				for _, r := range ranges {
					for _, g := range []string{store.Daily, store.Monthly} {
						for _, per := range []bool{false, true} {
							q := store.UsageQuery{Viewer: v.viewer, Publisher: v.publisher, Name: v.name, Tenant: v.tenant,
								From: r[0], To: r[1], Granularity: g, PerExtension: per}
							got, err := s.Usage(ctx, q)
							if err != nil {
								t.Fatal(err)
							}
							want := usageModel(accepted, q)
							old := legacyUsage(t, db, driver, q)
							if !reflect.DeepEqual(norm(got), norm(want)) || !reflect.DeepEqual(norm(old), norm(want)) {
								t.Fatalf("%+v:\nroll-up %d rows %v\nusage_daily %d rows %v\nmodel %d rows %v",
									q, len(got), got, len(old), old, len(want), want)
							}
							if v.viewer.Tenant == "globex" && !v.viewer.Publisher && !per {
								for _, row := range got {
									if row.Tenant != "globex" {
										t.Fatalf("%+v: globex sees %s's usage: %+v", q, row.Tenant, row)
									}
								}
							}
							compared++
							if len(got) > 0 {
								nonEmpty++
							}
						}
					}
				}
			}
			if nonEmpty < compared/2 {
				t.Fatalf("only %d of %d answers had rows: the random events exercise too little", nonEmpty, compared)
			}
		})
	}
}

// norm makes an empty answer nil, so that nil and [] compare equal.
func norm(rows []store.UsageRow) []store.UsageRow {
	if len(rows) == 0 {
		return nil
	}
	return rows
}

// usageModel answers q from the accepted events in Go, by the rules of
// store.UsageQuery.
func usageModel(accepted map[[3]string]*store.UsageEvent, q store.UsageQuery) []store.UsageRow {
	v := q.Viewer
	sums := map[store.UsageRow]*store.UsageRow{} // key: the row without its counts
	for _, e := range accepted {
		visible := v.All || v.Tenant != "" && (e.Tenant == v.Tenant || v.Publisher && e.Owner == v.Tenant)
		if !visible || q.Publisher != "" && e.Publisher != q.Publisher || q.Name != "" && e.Name != q.Name ||
			q.Tenant != "" && e.Tenant != q.Tenant {
			continue
		}
		day := time.Date(e.At.Year(), e.At.Month(), e.At.Day(), 0, 0, 0, 0, time.UTC)
		if !q.From.IsZero() && day.Before(q.From) || !q.To.IsZero() && !day.Before(q.To) {
			continue
		}
		k := store.UsageRow{Period: day.Format("2006-01-02"), Tenant: e.Tenant, Publisher: e.Publisher, Name: e.Name, Version: e.Version}
		if q.Granularity == store.Monthly {
			k.Period = day.Format("2006-01")
		}
		if q.PerExtension {
			k.Tenant, k.Version = "", ""
		}
		r := sums[k]
		if r == nil {
			r = &store.UsageRow{}
			*r = k
			sums[k] = r
		}
		switch e.Type {
		case store.UsagePull:
			r.Pulls += e.Quantity
		case store.UsageInstall:
			r.Installs += e.Quantity
		case store.UsageSeats:
			r.Seats = max(r.Seats, e.Quantity)
		}
		r.Events++
	}
	out := make([]store.UsageRow, 0, len(sums))
	for _, r := range sums {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b store.UsageRow) int {
		return cmp.Or(strings.Compare(a.Period, b.Period), strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version),
			strings.Compare(a.Tenant, b.Tenant))
	})
	return out
}

// legacyUsage is Store.Usage as it was before the roll-ups: usage_daily
// (one row per type) grouped by period, tenant and version, or by period
// and extension for PerExtension.
func legacyUsage(t *testing.T, db *sql.DB, driver string, q store.UsageQuery) []store.UsageRow {
	t.Helper()
	var conds []string
	var args []any
	add := func(c string, a ...any) { conds = append(conds, c); args = append(args, a...) }
	switch v := q.Viewer; {
	case v.All:
	case v.Tenant == "":
		return nil
	case v.Publisher:
		add("(tenant = ? OR owner = ?)", v.Tenant, v.Tenant)
	default:
		add("tenant = ?", v.Tenant)
	}
	if q.Publisher != "" {
		add("publisher = ?", q.Publisher)
	}
	if q.Name != "" {
		add("name = ?", q.Name)
	}
	if q.Tenant != "" {
		add("tenant = ?", q.Tenant)
	}
	if !q.From.IsZero() {
		add("day >= ?", store.DayOf(q.From))
	}
	if !q.To.IsZero() {
		add("day < ?", store.DayOf(q.To))
	}
	period := "day"
	if q.Granularity == store.Monthly {
		period = "day / 100"
	}
	cols, group, order := "tenant, publisher, name, version", "tenant, publisher, name, version", "name, version, tenant"
	if q.PerExtension {
		cols, group, order = "'', publisher, name, ''", "publisher, name", "name"
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	query := `SELECT ` + period + ` AS period, ` + cols + `,
		SUM(CASE WHEN type = 'pull' THEN quantity ELSE 0 END), SUM(CASE WHEN type = 'install' THEN quantity ELSE 0 END),
		MAX(CASE WHEN type = 'seats' THEN peak ELSE 0 END), SUM(events)
		FROM usage_daily` + where + ` GROUP BY ` + period + `, ` + group + ` ORDER BY 1, ` + order
	if driver == "postgres" {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", "$"+strconv.Itoa(i), 1)
		}
	}
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []store.UsageRow
	for rows.Next() {
		var r store.UsageRow
		var p int
		if err := rows.Scan(&p, &r.Tenant, &r.Publisher, &r.Name, &r.Version, &r.Pulls, &r.Installs, &r.Seats, &r.Events); err != nil {
			t.Fatal(err)
		}
		if q.Granularity == store.Monthly {
			r.Period = fmt.Sprintf("%04d-%02d", p/100, p%100)
		} else {
			r.Period = fmt.Sprintf("%04d-%02d-%02d", p/10000, p/100%100, p%100)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUsageRollupMigrationBackfills upgrades an index at migration 0042
// whose usage_daily holds a month of usage (pulls, installs and seats, two
// tenants, days at both ends of the month) to the roll-ups: the answers
// after the upgrade are the former aggregation's, by day and by month, and
// usage recorded after it adds to the backfilled rows.
func TestUsageRollupMigrationBackfills(t *testing.T) {
	for driver, open := range map[string]func() (url, dsn, sqlDriver string){
		"sqlite": func() (string, string, string) {
			path := filepath.Join(t.TempDir(), "index.db")
			return "sqlite://" + path, "file:" + path, "sqlite"
		},
		"postgres": func() (string, string, string) {
			url := storetest.PostgresSchema(t)
			return url, url, "pgx"
		},
	} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			url, dsn, sqlDriver := open()
			db, err := sql.Open(sqlDriver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			dialect := goose.DialectSQLite3
			if driver == "postgres" {
				dialect = goose.DialectPostgres
			}
			p, err := goose.NewProvider(dialect, db, os.DirFS(filepath.Join("migrations", driver)), goose.WithTableName("goose_db_version"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 42); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO usage_daily (day, tenant, owner, publisher, name, version, type, events, quantity, peak) VALUES
					(20261101, 'globex', 'acme', 'acme', 'acme/crm', '1.0.0', 'pull', 3, 3, 1),
					(20261101, 'globex', 'acme', 'acme', 'acme/crm', '1.0.0', 'install', 2, 5, 4),
					(20261101, 'globex', 'acme', 'acme', 'acme/crm', '1.0.0', 'seats', 2, 17, 12),
					(20261130, 'globex', 'acme', 'acme', 'acme/crm', '1.0.0', 'seats', 1, 9, 9),
					(20261130, 'initech', 'acme', 'acme', 'acme/crm', '2.0.0', 'pull', 1, 1, 1),
					(20261201, 'initech', 'acme', 'acme', 'acme/crm', '2.0.0', 'install', 1, 1, 1)`,
				`INSERT INTO usage_monthly (month, tenant, owner, publisher, name, version, type, events, quantity, peak)
					SELECT day / 100, tenant, MIN(owner), publisher, name, version, type, SUM(events), SUM(quantity), MAX(peak)
					FROM usage_daily GROUP BY day / 100, tenant, publisher, name, version, type`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			queries := []store.UsageQuery{
				{Viewer: store.UsageViewer{All: true}, Granularity: store.Daily},
				{Viewer: store.UsageViewer{All: true}, Granularity: store.Monthly},
				{Viewer: store.UsageViewer{Tenant: "acme", Publisher: true}, Granularity: store.Monthly,
					From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
				{Viewer: store.UsageViewer{Tenant: "initech"}, Granularity: store.Daily, PerExtension: true},
			}
			var before [][]store.UsageRow
			for _, q := range queries {
				before = append(before, legacyUsage(t, db, driver, q))
			}
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			defer s.Close()
			for i, q := range queries {
				got, err := s.Usage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(before[i]) == 0 || !reflect.DeepEqual(got, before[i]) {
					t.Fatalf("%+v after the upgrade:\n%v\nbefore:\n%v", q, got, before[i])
				}
			}
			if _, err := s.RecordUsage(ctx, []*store.UsageEvent{{Source: "s", ID: "after", At: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
				Tenant: "globex", Owner: "acme", Publisher: "acme", Name: "acme/crm", Version: "1.0.0", Digest: "sha256:x",
				Type: store.UsageSeats, Quantity: 30}}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Usage(ctx, store.UsageQuery{Viewer: store.UsageViewer{Tenant: "globex"}, Granularity: store.Monthly})
			if err != nil {
				t.Fatal(err)
			}
			want := []store.UsageRow{{Period: "2026-11", Tenant: "globex", Publisher: "acme", Name: "acme/crm", Version: "1.0.0",
				Pulls: 3, Installs: 5, Seats: 30, Events: 9}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("globex's November after one more seat report: %+v, want %+v", got, want)
			}
		})
	}
}
