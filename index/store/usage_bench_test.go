package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// usageDrivers opens a fresh store of each driver and says how to reach its
// database directly (for bulk loads).
func usageDrivers(testing.TB) map[string]func(b testing.TB) (store.Store, *sql.DB) {
	return map[string]func(b testing.TB) (store.Store, *sql.DB){
		"sqlite": func(b testing.TB) (store.Store, *sql.DB) {
			path := filepath.Join(b.TempDir(), "index.db")
			s, err := store.Open(context.Background(), "sqlite://"+path)
			if err != nil {
				b.Fatal(err)
			}
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close(); s.Close() })
			return s, db
		},
		"postgres": func(b testing.TB) (store.Store, *sql.DB) {
			url := storetest.PostgresSchema(b)
			s, err := store.Open(context.Background(), url)
			if err != nil {
				b.Fatal(err)
			}
			db, err := sql.Open("pgx", url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close(); s.Close() })
			return s, db
		},
	}
}

// BenchmarkRecordUsage ingests batches of 1,000 new install and pull events
// (20 tenants, 100 extensions of 10 publishers, 2 versions, the days of a
// month) and reports events per second. go test ./index/store -run '^$'
// -bench RecordUsage -benchtime 50x
func BenchmarkRecordUsage(b *testing.B) {
	const batch = 1000
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for name, open := range usageDrivers(b) {
		b.Run(name, func(b *testing.B) {
			s, _ := open(b)
			n := 0
			next := func() []*store.UsageEvent {
				events := make([]*store.UsageEvent, batch)
				for i := range events {
					n++
					ext := n % 100
					typ := store.UsageInstall
					if n%3 != 0 {
						typ = store.UsagePull
					}
					events[i] = &store.UsageEvent{Source: "urn:bench", ID: fmt.Sprint(n), At: base.Add(time.Duration(n%(30*24*60)) * time.Minute),
						Tenant: fmt.Sprint("tenant", n%20), Owner: fmt.Sprint("owner", ext%10), Publisher: fmt.Sprint("pub", ext%10),
						Name: fmt.Sprintf("pub%d/ext%d", ext%10, ext), Version: fmt.Sprint("1.", n%2, ".0"), Digest: "sha256:x", Type: typ, Quantity: 1}
				}
				return events
			}
			b.ResetTimer()
			var spent time.Duration
			for range b.N {
				events := next()
				start := time.Now()
				if _, err := s.RecordUsage(context.Background(), events); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
			}
			b.ReportMetric(float64(b.N*batch)/spent.Seconds(), "events/s")
		})
	}
}

// BenchmarkUsageQuery reads a month of usage that holds 10 million events:
// the daily aggregate such a month makes (20 tenants, 100 extensions of 10
// publishers, 2 versions, pulls and installs, 30 days: 240,000 rows of
// about 42 events each) and the roll-ups made from it (120,000 daily rows,
// 4,000 monthly), loaded directly, since queries read the roll-ups and
// never the raw events. It reports each query's p99 in milliseconds.
// go test ./index/store -run '^$' -bench UsageQuery -benchtime 200x
func BenchmarkUsageQuery(b *testing.B) {
	for name, open := range usageDrivers(b) {
		b.Run(name, func(b *testing.B) {
			s, db := open(b)
			loadMonth(b, db, name)
			queries := map[string]store.UsageQuery{
				"publisher-by-day":   {Viewer: store.UsageViewer{Tenant: "owner3", Publisher: true}, Publisher: "pub3"},
				"publisher-by-month": {Viewer: store.UsageViewer{Tenant: "owner3", Publisher: true}, Granularity: store.Monthly},
				"tenant-by-day":      {Viewer: store.UsageViewer{Tenant: "tenant7"}},
				"extension-by-day":   {Viewer: store.UsageViewer{All: true}, Name: "pub4/ext14"},
				"operator-by-month":  {Viewer: store.UsageViewer{All: true}, Granularity: store.Monthly},
			}
			for qn, q := range queries {
				q.From, q.To = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
				b.Run(qn, func(b *testing.B) {
					times := make([]time.Duration, 0, b.N)
					var rows int
					cpu0 := processCPU(b)
					for range b.N {
						start := time.Now()
						out, err := s.Usage(context.Background(), q)
						if err != nil {
							b.Fatal(err)
						}
						times = append(times, time.Since(start))
						rows = len(out)
					}
					// The CPU this process spent per query: on a loaded
					// machine SQLite's answer takes about this long on an
					// idle one (PostgreSQL's server side is not in it).
					b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
					slices.Sort(times)
					b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(rows), "rows")
				})
			}
		})
	}
}

// loadMonth fills usage_daily and the roll-ups with November 2026's
// aggregates of 10 million events, in SQL.
func loadMonth(b *testing.B, db *sql.DB, driver string) {
	b.Helper()
	series := func(name string, n int) string {
		if driver == "postgres" {
			return fmt.Sprintf("generate_series(0, %d) AS %s(i)", n-1, name)
		}
		return fmt.Sprintf("(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s) AS %s", n-1, name)
	}
	cat := "||"
	q := `INSERT INTO usage_daily (day, tenant, owner, publisher, name, version, type, events, quantity, peak)
		SELECT 20261101 + d.i, 'tenant' ` + cat + ` t.i, 'owner' ` + cat + ` (e.i % 10), 'pub' ` + cat + ` (e.i % 10),
			'pub' ` + cat + ` (e.i % 10) ` + cat + ` '/ext' ` + cat + ` e.i, '1.' ` + cat + ` v.i ` + cat + ` '.0',
			CASE WHEN y.i = 0 THEN 'pull' ELSE 'install' END, 42, 42, 1
		FROM ` + series("d", 30) + `, ` + series("t", 20) + `, ` + series("e", 100) + `, ` + series("v", 2) + `, ` + series("y", 2)
	start := time.Now()
	if _, err := db.Exec(q); err != nil {
		b.Fatal(err)
	}
	// The roll-ups, as migration 0043 makes them from usage_daily.
	for _, q := range []string{`INSERT INTO usage_rollup_daily (publisher, day, name, version, tenant, owner, pulls, installs, seats, events)
		SELECT publisher, day, name, version, tenant, MIN(owner),
			SUM(CASE WHEN type = 'pull' THEN quantity ELSE 0 END), SUM(CASE WHEN type = 'install' THEN quantity ELSE 0 END),
			MAX(CASE WHEN type = 'seats' THEN peak ELSE 0 END), SUM(events)
		FROM usage_daily GROUP BY publisher, day, name, version, tenant`,
		`INSERT INTO usage_rollup_monthly (publisher, month, name, version, tenant, owner, pulls, installs, seats, events)
		SELECT publisher, day / 100, name, version, tenant, MIN(owner), SUM(pulls), SUM(installs), MAX(seats), SUM(events)
		FROM usage_rollup_daily GROUP BY publisher, day / 100, name, version, tenant`} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	if driver == "postgres" {
		// VACUUM as autovacuum would after such a load: it sets the
		// visibility map, which index-only scans rely on.
		for _, t := range []string{"usage_daily", "usage_rollup_daily", "usage_rollup_monthly"} {
			db.Exec(`VACUUM ANALYZE ` + t)
		}
	} else {
		db.Exec(`ANALYZE`)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM usage_daily`).Scan(&n)
	b.Logf("%s: loaded %d daily rows (10,080,000 events) in %s", driver, n, time.Since(start).Round(time.Millisecond))
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
