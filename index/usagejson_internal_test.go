package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
)

// TestUsagePageIsWhatWriteJSONWrites compares writeUsagePage, the usage
// answer's hand-written encoder, with encoding/json as writeJSON runs it,
// byte for byte: empty answers, and random rows whose texts hold quotes,
// backslashes, HTML characters, control characters, non-ASCII and invalid
// UTF-8 (a tenant is any string a token was made for), and whose numbers
// reach the int64 range's ends.
func TestUsagePageIsWhatWriteJSONWrites(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	texts := []string{"", "acme", "acme/crm", "1.0.0-rc.1+b", `quo"te`, `back\slash`, "<script>&amp;", "tab\tnew\nline\x00\x1f",
		"überöffentlich", "\u2028\u2029", "bad\xffutf8", "emoji 🚀", "=cmd|' /C calc'!A0"}
	text := func() string { return texts[rng.IntN(len(texts))] }
	num := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return 1<<63 - 1
		case 2:
			return -1 << 63
		}
		return rng.Int64N(1_000_000)
	}
	for n := range 200 {
		rows := make([]store.UsageRow, rng.IntN(3)*rng.IntN(400))
		for i := range rows {
			rows[i] = store.UsageRow{Period: text(), Tenant: text(), Publisher: text(), Name: text(), Version: text(),
				Pulls: num(), Installs: num(), Seats: num(), Events: num()}
		}
		granularity := []string{store.Daily, store.Monthly, text()}[rng.IntN(3)]
		page := client.UsagePage{Granularity: granularity, Rows: make([]client.UsageRow, len(rows))}
		for i, u := range rows {
			page.Rows[i] = client.UsageRow(u)
		}
		var want, got bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(page); err != nil {
			t.Fatal(err)
		}
		if err := writeUsagePage(&got, granularity, rows); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			i := 0
			for i < min(got.Len(), want.Len()) && got.Bytes()[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("answer %d (%d rows) differs at byte %d:\ngot  …%s\nwant …%s", n, len(rows), i,
				tail(got.Bytes(), i), tail(want.Bytes(), i))
		}
	}
}

func tail(b []byte, i int) string { return fmt.Sprintf("%q", b[i:min(len(b), i+80)]) }

// BenchmarkUsagePageJSON encodes a 12,000-row answer (one publisher's
// month by day: 20 tenants, 10 extensions, 2 versions, 30 days) by
// writeUsagePage and, for comparison, by encoding/json as before.
func BenchmarkUsagePageJSON(b *testing.B) {
	var rows []store.UsageRow
	for d := range 30 {
		for e := range 10 {
			for v := range 2 {
				for tn := range 20 {
					rows = append(rows, store.UsageRow{Period: fmt.Sprintf("2026-11-%02d", d+1), Tenant: fmt.Sprint("tenant", tn),
						Publisher: "pub3", Name: fmt.Sprint("pub3/ext", e*10+3), Version: fmt.Sprint("1.", v, ".0"), Pulls: 42, Installs: 42, Events: 84})
				}
			}
		}
	}
	var buf bytes.Buffer
	b.Run("writeUsagePage", func(b *testing.B) {
		for range b.N {
			buf.Reset()
			if err := writeUsagePage(&buf, store.Daily, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			buf.Reset()
			page := client.UsagePage{Granularity: store.Daily, Rows: make([]client.UsageRow, len(rows))}
			for i, u := range rows {
				page.Rows[i] = client.UsageRow(u)
			}
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(page); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})
}
