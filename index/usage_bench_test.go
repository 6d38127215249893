package index_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// BenchmarkUsageAPI measures GET /api/v1/usage end to end (token, query,
// JSON) over November 2026 holding 10 million events
// (storetest.LoadUsageMonth), as issue 12's aim states it: usage queries
// p99 ≤ 50 ms over such a month. Each answer's p99 and mean in
// milliseconds, and its rows, are reported (docs/performance.md).
// go test ./index -run '^$' -bench UsageAPI -benchtime 200x
func BenchmarkUsageAPI(b *testing.B) {
	for driver, open := range storetest.UsageDrivers() {
		b.Run(driver, func(b *testing.B) {
			ctx := context.Background()
			st, db := open(b)
			storetest.LoadUsageMonth(b, db, driver)
			tokens := map[string]string{}
			for _, who := range []struct {
				tenant string
				roles  []string
			}{{"owner3", []string{"publisher"}}, {"tenant7", []string{"reader"}}, {"ops", []string{"admin"}}} {
				tok, rec, err := index.NewToken(who.tenant, who.roles)
				if err != nil {
					b.Fatal(err)
				}
				if err := st.PutToken(ctx, rec); err != nil {
					b.Fatal(err)
				}
				tokens[who.tenant] = tok
			}
			h := (&index.API{Store: st, Metering: st, Operator: "ops"}).Handler()
			const month = "from=2026-11-01&to=2026-12-01"
			for _, q := range []struct{ name, who, query string }{
				{"publisher-by-day", "owner3", "publisher=pub3&" + month},
				{"publisher-by-month", "owner3", "granularity=month&" + month},
				{"tenant-by-day", "tenant7", month},
				{"extension-by-day", "ops", "name=pub4/ext14&" + month},
				{"operator-by-month", "ops", "granularity=month&" + month},
			} {
				b.Run(q.name, func(b *testing.B) {
					var lat []time.Duration
					var size int
					for b.Loop() {
						req := httptest.NewRequest(http.MethodGet, "/api/v1/usage?"+q.query, nil)
						req.Header.Set("Authorization", "Bearer "+tokens[q.who])
						rw := httptest.NewRecorder()
						t0 := time.Now()
						h.ServeHTTP(rw, req)
						lat = append(lat, time.Since(t0))
						if rw.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", q.query, rw.Code, rw.Body)
						}
						size = rw.Body.Len()
					}
					b.StopTimer()
					var sum time.Duration
					for _, l := range lat {
						sum += l
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(lat)), "mean-ms")
					b.ReportMetric(float64(size), "bytes")
					if size < 10000 {
						// Every answer here has 400 rows or more.
						b.Fatalf("%s: an answer of %d bytes: the month was not loaded", q.query, size)
					}
				})
			}
		})
	}
}
