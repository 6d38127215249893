package billing_test

import (
	"testing"

	"github.com/connectsoft/marketplace/index/billing"
)

// FuzzParseTerms: a terms predicate from any signer never panics the
// statement run, and terms it accepts price a line without error.
func FuzzParseTerms(f *testing.F) {
	f.Add([]byte(`{"license":"MIT","pricing":{"model":"usage","price":0.125,"currency":"EUR"},"revenueShare":{"publisher":70,"platform":30},"effectiveDate":"2026-01-01T00:00:00Z","time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"license":"MIT","pricing":{"model":"per-seat","price":1e3,"currency":"KWD"},"effectiveDate":"2026-01-01T00:00:00Z","time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"license":"MIT","pricing":{"model":"free"},"effectiveDate":"2026-01-01T00:00:00Z","time":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := billing.ParseTerms(data)
		if err != nil {
			return
		}
		if tm.Price == nil || tm.PlatformPercent == nil || tm.Price.Negative {
			t.Fatalf("accepted terms without a price or share: %+v", tm)
		}
		if tm.Model != billing.ModelFree {
			minor, err := billing.MinorUnits(tm.Currency)
			if err != nil {
				t.Fatalf("accepted terms in an unknown currency %q", tm.Currency)
			}
			if _, _, err := billing.Split(tm.Price, tm.PlatformPercent, minor); err != nil {
				t.Fatalf("accepted terms do not split: %v", err)
			}
		}
	})
}

// FuzzDecodeStatement: a statement document (pulled from a registry, read
// back from the store) never panics the decoder, and what it accepts
// encodes and decodes to the same statement.
func FuzzDecodeStatement(f *testing.F) {
	f.Add([]byte(`{"kind":"Statement","schemaVersion":"v1","publisher":"acme","period":"2026-11","from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","status":"closed","cutoff":"2026-12-01T00:05:00Z","lines":[{"extension":"acme/w","tenant":"t1","model":"usage","status":"priced","versions":["1.0.0"],"pulls":3,"installs":0,"seats":0,"units":3,"unitPrice":"1","currency":"EUR","gross":"3.00","platformPercent":"30","platformShare":"0.90","publisherShare":"2.10"}],"totals":[{"currency":"EUR","gross":"3.00","platformShare":"0.90","publisherShare":"2.10","lines":1}]}`))
	f.Add([]byte(`{"kind":"Statement","schemaVersion":"v1","period":"2026-13"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := billing.DecodeStatement(data)
		if err != nil {
			return
		}
		b, err := billing.EncodeStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := billing.DecodeStatement(b)
		if err != nil {
			t.Fatalf("an accepted statement does not decode once encoded: %v\n%s", err, b)
		}
		if b2, _ := billing.EncodeStatement(again); string(b2) != string(b) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}
