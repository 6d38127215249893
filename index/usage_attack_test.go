package index_test

import (
	"net/http"
	"testing"

	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// Regression (a reviewer's attack): an install report resent with the same source and id (a retry whose
// time moved, e.g. a client that leaves time out and retries across
// midnight at a month's end) is the same event: issue 12 says reports
// are idempotent by event id and duplicates count once.
func TestUsageSameEventIDAcrossMonthsCountsOnce(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			w := newUsageWorld(t, open(t))
			first := install("retry-1", "1.0.0")
			first["time"] = "2026-10-31T23:59:30Z"
			again := install("retry-1", "1.0.0")
			again["time"] = "2026-11-01T00:00:10Z"
			for _, ev := range []map[string]any{first, again} {
				if code, body := w.post(t, "globex", client.CloudEventContentType, ev); code != http.StatusAccepted {
					t.Fatalf("post: %d %v", code, body)
				}
			}
			var installs int64
			for _, r := range w.usage(t, "ops", client.UsageQuery{From: "2026-10-01", Granularity: "month"}) {
				installs += r.Installs
			}
			if installs != 1 {
				t.Fatalf("the event retry-1 of source urn:test:factory counted %d installs, want 1 (sent twice, its time a minute apart across a month's end)", installs)
			}
		})
	}
}
