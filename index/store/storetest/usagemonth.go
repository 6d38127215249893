package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// UsageDrivers opens a fresh store of each driver and says how to reach its
// database directly, for the bulk loads of the usage benchmarks and the
// checks that read the tables themselves.
func UsageDrivers() map[string]func(b testing.TB) (store.Store, *sql.DB) {
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
			url := PostgresSchema(b)
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

// LoadUsageMonth fills usage_daily and the roll-ups with November 2026's
// aggregates of 10 million events, in SQL: 20 tenants (tenant0…), 100
// extensions (pubP/extE, P = E mod 10, owned by ownerP), 2 versions, pulls
// and installs, 30 days; 240,000 daily rows of 42 events, 120,000 daily
// roll-up rows, 4,000 monthly. The raw events are not written: the usage
// answers never read them.
func LoadUsageMonth(b testing.TB, db *sql.DB, driver string) {
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
