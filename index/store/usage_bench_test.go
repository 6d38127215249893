package store_test

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// BenchmarkRecordUsage ingests batches of 1,000 new install and pull events
// (20 tenants, 100 extensions of 10 publishers, 2 versions, the days of a
// month) and reports events per second. go test ./index/store -run '^$'
// -bench RecordUsage -benchtime 50x
func BenchmarkRecordUsage(b *testing.B) {
	const batch = 1000
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for name, open := range storetest.UsageDrivers() {
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
	for name, open := range storetest.UsageDrivers() {
		b.Run(name, func(b *testing.B) {
			s, db := open(b)
			storetest.LoadUsageMonth(b, db, name)
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

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
