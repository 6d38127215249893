package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/connectsoft/marketplace/signing"
)

// Pricing models of the terms predicate (signing.Terms.Pricing.Model).
const (
	ModelFree    = "free"
	ModelFlat    = "flat"
	ModelPerSeat = "per-seat"
	ModelUsage   = "usage"
)

// Terms are one terms attestation (https://connectsoft.io/marketplace/terms/v1)
// as billing reads it: the numbers as exact decimals from the signed JSON
// text, and who signed it.
type Terms struct {
	Model    string
	Price    *apd.Decimal // zero for free
	Currency string       // "" for free
	// Unit is what the usage model charges per: "pull", "install" or ""
	// (each pull and each install).
	Unit string
	// PlatformPercent is the platform's share in percent; 0 when the
	// terms carry no revenue share (the publisher keeps the gross).
	PlatformPercent  *apd.Decimal
	PublisherPercent *apd.Decimal
	AgreementID      string
	EffectiveDate    time.Time
	Time             time.Time
	// Signer is the fingerprint of the key that signed the attestation.
	Signer string
}

// termsJSON is the predicate with its numbers kept as written.
type termsJSON struct {
	Pricing struct {
		Model    string      `json:"model"`
		Price    json.Number `json:"price"`
		Currency string      `json:"currency"`
		Unit     string      `json:"unit"`
	} `json:"pricing"`
	RevenueShare *struct {
		Publisher json.Number `json:"publisher"`
		Platform  json.Number `json:"platform"`
	} `json:"revenueShare"`
	AgreementID   string    `json:"agreementId"`
	EffectiveDate time.Time `json:"effectiveDate"`
	Time          time.Time `json:"time"`
}

// ParseTerms reads a terms predicate as signed. It must pass the signing
// package's checks of the predicate type (strict fields, a known model, an
// ISO 4217-shaped currency, shares adding up to 100); the price and the
// shares are then read from the JSON text as exact decimals, never through
// a float64, and the currency must be one whose minor unit is known.
func ParseTerms(predicate []byte) (*Terms, error) {
	if err := signing.ValidatePredicate(signing.TermsV1, predicate); err != nil {
		return nil, err
	}
	var raw termsJSON
	dec := json.NewDecoder(bytes.NewReader(predicate))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("terms: %w", err)
	}
	t := &Terms{Model: raw.Pricing.Model, Currency: raw.Pricing.Currency, Unit: raw.Pricing.Unit,
		AgreementID: raw.AgreementID, EffectiveDate: raw.EffectiveDate.UTC(), Time: raw.Time.UTC()}
	var err error
	if t.Price, err = number(raw.Pricing.Price, "pricing.price"); err != nil {
		return nil, err
	}
	t.PlatformPercent, t.PublisherPercent = apd.New(0, 0), apd.New(100, 0)
	if rs := raw.RevenueShare; rs != nil {
		if t.PlatformPercent, err = number(rs.Platform, "revenueShare.platform"); err != nil {
			return nil, err
		}
		if t.PublisherPercent, err = number(rs.Publisher, "revenueShare.publisher"); err != nil {
			return nil, err
		}
		sum, err := add(t.PlatformPercent, t.PublisherPercent)
		if err != nil || sum.Cmp(apd.New(100, 0)) != 0 {
			return nil, fmt.Errorf("terms: revenueShare %s + %s: the percentages must add up to exactly 100", t.PublisherPercent, t.PlatformPercent)
		}
	}
	if t.Model != ModelFree {
		if _, err := MinorUnits(t.Currency); err != nil {
			return nil, fmt.Errorf("terms: pricing.currency: %w", err)
		}
	}
	switch strings.TrimSuffix(t.Unit, "s") {
	case "", "pull", "install":
		t.Unit = strings.TrimSuffix(t.Unit, "s")
	default:
		if t.Model == ModelUsage {
			return nil, fmt.Errorf("terms: pricing.unit %q: want pull, install or none (each pull and install) for the usage model", raw.Pricing.Unit)
		}
	}
	return t, nil
}

func number(n json.Number, field string) (*apd.Decimal, error) {
	if n == "" {
		return apd.New(0, 0), nil
	}
	d, _, err := apd.NewFromString(string(n))
	if err != nil || d.Form != apd.Finite || d.Negative {
		return nil, fmt.Errorf("terms: %s %q: want a non-negative decimal number", field, n)
	}
	// 1e2 is a valid JSON number: read it as the plain 100 it denotes.
	if d.Exponent > 0 {
		if _, _, err := exact.Reduce(d, d); err != nil {
			return nil, fmt.Errorf("terms: %s %q: %w", field, n, err)
		}
	}
	return d, nil
}

// Key identifies what the terms price by (model, price, currency, unit,
// shares, agreement): two versions under equal terms share one line.
func (t *Terms) Key() string {
	return strings.Join([]string{t.Model, t.Price.Text('f'), t.Currency, t.Unit, t.PlatformPercent.Text('f'), t.AgreementID,
		t.EffectiveDate.Format(time.RFC3339Nano)}, "|")
}

// Evidence is the part of a stored version's evidence
// (store.Version.Evidence, as the ingester writes it) that terms are read
// from: every attestation, with whether it verified and by which key.
type Evidence struct {
	Attestations []signing.AttestationResult `json:"attestations"`
}

// TrustedTerms returns the terms attestations of one version's evidence
// that count: verified (against the keys the index's policy trusts for the
// version, at ingest) and, when trusted is not nil, signed by a key it
// accepts — the publisher's own keys (DESIGN §6.1), so that a key the
// policy trusts for another publisher cannot set this publisher's prices.
// Attestations that do not parse are skipped and reported in problems.
func TrustedTerms(evidence []byte, trusted func(fingerprint string) bool) (terms []*Terms, problems []string) {
	if len(evidence) == 0 {
		return nil, nil
	}
	var ev Evidence
	if err := json.Unmarshal(evidence, &ev); err != nil {
		return nil, []string{"evidence: " + err.Error()}
	}
	for _, a := range ev.Attestations {
		if a.PredicateType != signing.TermsV1 || !a.Verified || a.Statement == nil {
			continue
		}
		if trusted != nil && !trusted(a.Fingerprint) {
			problems = append(problems, fmt.Sprintf("terms signed by key %s ignored: not a key of the extension's publisher", short(a.Fingerprint)))
			continue
		}
		t, err := ParseTerms(a.Statement.Predicate)
		if err != nil {
			problems = append(problems, fmt.Sprintf("terms signed by key %s ignored: %v", short(a.Fingerprint), err))
			continue
		}
		t.Signer = a.Fingerprint
		terms = append(terms, t)
	}
	return terms, problems
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// Segment is a window of time in which one version of an extension is
// under one set of terms: [From, To), To zero meaning open-ended.
type Segment struct {
	ID      int
	Name    string
	Version string
	From    time.Time
	To      time.Time
	Terms   *Terms
}

// Segments turns one version's terms into the windows they are in force:
// terms are in force from their effectiveDate until the next later
// effectiveDate; of several with the same effectiveDate the one made last
// (its "time", then the later in the list) wins. Before the first
// effectiveDate the version has no terms (no segment).
func Segments(name, version string, terms []*Terms) []Segment {
	ts := slices.Clone(terms)
	slices.SortStableFunc(ts, func(a, b *Terms) int {
		if c := a.EffectiveDate.Compare(b.EffectiveDate); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	var out []Segment
	for i, t := range ts {
		if i+1 < len(ts) && ts[i+1].EffectiveDate.Equal(t.EffectiveDate) {
			continue // a later statement for the same date wins
		}
		if n := len(out); n > 0 {
			out[n-1].To = t.EffectiveDate
		}
		out = append(out, Segment{Name: name, Version: version, From: t.EffectiveDate, Terms: t})
	}
	return out
}
