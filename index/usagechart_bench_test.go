package index_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// BenchmarkExtensionPageUsageChart measures GET /extensions/acme/crm as
// acme's publisher sees it (the chart of every tenant's usage: the widest
// view, so the largest aggregate read) over a store holding 90 days of
// pulls and installs of acme/crm's two versions by 200 tenants (36,000
// daily rows), on SQLite and PostgreSQL. It reports the p50 and p99 of
// the page's latency (docs/performance.md).
func BenchmarkExtensionPageUsageChart(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			st := c.open(b)
			for _, v := range []string{"1.0.0", "1.1.0"} {
				if _, err := st.UpsertVersion(ctx, &store.Version{Tenant: "acme", Name: "acme/crm", Version: v, Digest: fmt.Sprintf("sha256:%064x", len(v)+int(v[2])),
					Repository: "reg.example/acme/crm", Kind: "Module", License: "MIT", Visibility: store.Public}); err != nil {
					b.Fatal(err)
				}
			}
			now := time.Now().UTC()
			var batch []*store.UsageEvent
			flush := func() {
				if _, err := st.RecordUsage(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
			start := time.Now()
			for d := range 90 {
				for tn := range 200 {
					for _, v := range []string{"1.0.0", "1.1.0"} {
						for _, typ := range []string{store.UsagePull, store.UsageInstall} {
							batch = append(batch, &store.UsageEvent{Source: "bench", ID: fmt.Sprintf("%d-%d-%s-%s", d, tn, v, typ),
								At: now.AddDate(0, 0, -d), Tenant: fmt.Sprintf("tenant-%03d", tn), Owner: "acme", Publisher: "acme",
								Name: "acme/crm", Version: v, Digest: "sha256:" + fmt.Sprintf("%064d", 1), Type: typ, Quantity: int64(1 + tn%3)})
						}
					}
				}
				if len(batch) >= 4000 {
					flush()
				}
			}
			flush()
			b.Logf("recorded 72,000 events in %s", time.Since(start))
			tok, rec, err := index.NewToken("acme", []string{"publisher"})
			if err != nil {
				b.Fatal(err)
			}
			if err := st.PutToken(ctx, rec); err != nil {
				b.Fatal(err)
			}
			h := (&index.API{Store: st, Metering: st, Operator: "ops"}).Handler()
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/extensions/acme/crm", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				rw := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(rw, req)
				lat = append(lat, time.Since(t0))
				if rw.Code != http.StatusOK {
					b.Fatalf("%d %s", rw.Code, rw.Body)
				}
				io.Copy(io.Discard, rw.Body)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
