package billing_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// BenchmarkStatementOfAMonth measures a publisher's statement of a month
// of MKT_BENCH_EVENTS usage events (default 10 million) on PostgreSQL: 50
// extensions of two versions, each with terms that change mid-month, 1,000
// tenants, pulls, installs and seat reports. The events are written with
// one INSERT … SELECT generate_series (the ingest path has its own
// benchmark); the statement is computed as mkt index statements and the
// API compute it, the store grouping in SQL.
//
//	MKT_BENCH_EVENTS=10000000 go test ./index/billing -run '^$' -bench StatementOfAMonth -benchtime 3x
func BenchmarkStatementOfAMonth(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("MKT_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	url := storetest.PostgresSchema(b)
	st, err := store.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const exts = 50
	eff := nov.AddDate(0, -1, 0)
	for e := range exts {
		for _, ver := range []string{"1.0.0", "2.0.0"} {
			v := version(fmt.Sprintf("acme/e%d", e), ver,
				attestation("fp", termsJSON("usage", "0.0125", "EUR", "30", eff)),
				attestation("fp", termsJSON("usage", "0.015", "EUR", "25", day(15))))
			if e%5 == 1 {
				v = version(v.Name, ver, attestation("fp", termsJSON("per-seat", "4.5", "USD", "20", eff)))
			}
			v.Tenant, v.Repository, v.Digest = "acme", "reg.example/"+v.Name, "sha256:"+strings.Repeat("c", 64)
			if _, err := st.ClaimName(ctx, v.Name, v.Tenant, v.Repository); err != nil {
				b.Fatal(err)
			}
			if _, err := st.UpsertVersion(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// November's partition is filled before it is attached, so that its
	// indexes are built once in bulk, not row by row.
	start := time.Now()
	step := int64(30*24*time.Hour) / int64(n)
	for _, q := range []string{
		`CREATE TABLE usage_events_202611 (LIKE usage_events INCLUDING DEFAULTS)`,
		`INSERT INTO usage_events_202611 (month, source, id, at, received_at, tenant, owner, publisher, name, version, digest, type, quantity)
		SELECT 202611, 'bench', g::text, $1 + g * $2, $1 + g * $2, 't' || (g % 1000), 'acme', 'acme', 'acme/e' || (g % 50),
			CASE WHEN g % 3 = 0 THEN '2.0.0' ELSE '1.0.0' END, 'sha256:x',
			CASE g % 10 WHEN 0 THEN 'install' WHEN 1 THEN 'seats' ELSE 'pull' END,
			CASE WHEN g % 10 = 1 THEN g % 100 ELSE 1 END
		FROM generate_series(0, $3::bigint - 1) g`,
		`ALTER TABLE usage_events ATTACH PARTITION usage_events_202611 FOR VALUES FROM (202611) TO (202612)`,
		// The daily aggregate, as RecordUsage keeps it.
		`INSERT INTO usage_daily (day, tenant, owner, publisher, name, version, type, events, quantity, peak)
		SELECT 20261101 + ((at - $1) / 86400000000000)::int, tenant, owner, publisher, name, version, type, COUNT(*), SUM(quantity), MAX(quantity)
		FROM usage_events_202611 GROUP BY 1, tenant, owner, publisher, name, version, type`,
	} {
		var args []any
		switch {
		case strings.HasPrefix(q, "INSERT INTO usage_events_202611"):
			args = []any{nov.UnixNano(), step, n}
		case strings.Contains(q, "INSERT INTO usage_daily"):
			args = []any{nov.UnixNano()}
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `ANALYZE usage_events; ANALYZE usage_daily`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events written in %s", n, time.Since(start).Round(time.Millisecond))
	bl := &billing.Builder{Usage: st, Versions: st, Closed: st}
	b.ResetTimer()
	var s *billing.Statement
	for b.Loop() {
		if s, err = bl.Preview(ctx, "acme", "2026-11", nov.AddDate(0, 1, 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var events int64
	for _, l := range s.Lines {
		events += l.Pulls + l.Installs
	}
	b.ReportMetric(float64(len(s.Lines)), "lines")
	if len(s.Lines) == 0 || events == 0 {
		b.Fatalf("statement of %d lines and %d pulls and installs", len(s.Lines), events)
	}
	b.Logf("%d lines, %d pulls and installs, totals %+v", len(s.Lines), events, s.Totals)
}
