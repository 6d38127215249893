package billing

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// Usage event types, as the usage store records them.
const (
	TypePull    = "pull"
	TypeInstall = "install"
	TypeSeats   = "seats"
)

// Line statuses.
const (
	// StatusPriced: the line was priced under the terms named on it.
	StatusPriced = "priced"
	// StatusNoTerms: the extension version had no trusted terms in force
	// at the events' time; the usage is reported, not priced.
	StatusNoTerms = "noTerms"
)

// StatementKind and StatementSchemaVersion head every statement document.
const (
	StatementKind          = "Statement"
	StatementSchemaVersion = "v1"
)

// Statement is one publisher's revenue-share statement for one calendar
// month (UTC). Its JSON is what is signed when the period is closed.
type Statement struct {
	Kind          string `json:"kind"`
	SchemaVersion string `json:"schemaVersion"`
	Publisher     string `json:"publisher"`
	// Period is the month, YYYY-MM.
	Period string    `json:"period"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Status is open (a preview that may still change) or closed.
	Status string `json:"status"`
	// Cutoff: the statement counts the events the index received before
	// it; later ones for this period are adjustments of a later one.
	Cutoff   time.Time `json:"cutoff"`
	ClosedAt time.Time `json:"closedAt,omitzero"`
	Lines    []Line    `json:"lines"`
	// Totals are the sums of the priced lines, one per currency.
	Totals []Total `json:"totals"`
	// Problems name terms that were ignored, and why.
	Problems []string `json:"problems,omitempty"`
}

// Statement statuses.
const (
	StatementOpen   = "open"
	StatementClosed = "closed"
)

// Line is one extension, tenant and pricing model (and terms) of a
// statement: the usage counted and the money it makes.
type Line struct {
	Extension string `json:"extension"`
	Tenant    string `json:"tenant"`
	// Model is the pricing model (free, flat, per-seat, usage); empty
	// when the status is noTerms.
	Model  string `json:"model,omitempty"`
	Status string `json:"status"`
	// Adjustment marks usage of an earlier, closed period that arrived
	// after it closed; OriginalPeriod names that period.
	Adjustment     bool     `json:"adjustment,omitempty"`
	OriginalPeriod string   `json:"originalPeriod,omitempty"`
	Versions       []string `json:"versions"`
	AgreementID    string   `json:"agreementId,omitempty"`
	// TermsEffective is the effectiveDate of the terms that priced the line.
	TermsEffective time.Time `json:"termsEffective,omitzero"`
	// Pulls and Installs are counted; Seats is the highest seat count
	// reported.
	Pulls    int64 `json:"pulls"`
	Installs int64 `json:"installs"`
	Seats    int64 `json:"seats"`
	// Units is what the model bills (docs/billing.md).
	Units           int64  `json:"units"`
	UnitPrice       string `json:"unitPrice,omitempty"`
	Currency        string `json:"currency,omitempty"`
	Gross           string `json:"gross,omitempty"`
	PlatformPercent string `json:"platformPercent,omitempty"`
	PlatformShare   string `json:"platformShare,omitempty"`
	PublisherShare  string `json:"publisherShare,omitempty"`
	// Note says why a line bills fewer units than its usage suggests.
	Note string `json:"note,omitempty"`

	first time.Time
	terms *Terms
}

// Total sums the priced lines of one currency.
type Total struct {
	Currency       string `json:"currency"`
	Gross          string `json:"gross"`
	PlatformShare  string `json:"platformShare"`
	PublisherShare string `json:"publisherShare"`
	Lines          int    `json:"lines"`
}

var periodPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// ParsePeriod reads YYYY-MM and returns the month's bounds, [from, to), in UTC.
func ParsePeriod(s string) (from, to time.Time, err error) {
	if !periodPattern.MatchString(s) {
		return from, to, fmt.Errorf("period %q: want a calendar month as YYYY-MM, such as 2026-11", s)
	}
	from, err = time.Parse("2006-01", s)
	if err != nil {
		return from, to, fmt.Errorf("period %q: %w", s, err)
	}
	return from, from.AddDate(0, 1, 0), nil
}

// PeriodOf is the calendar month (UTC) t falls in, YYYY-MM.
func PeriodOf(t time.Time) string { return t.UTC().Format("2006-01") }

// label fills the fields a line's terms give it (its status, model,
// agreement and the terms' effective date): before the lines are sorted,
// which orders by them.
func (l *Line) label() {
	t := l.terms
	if t == nil {
		l.Status = StatusNoTerms
		return
	}
	l.Status, l.Model, l.AgreementID, l.TermsEffective = StatusPriced, t.Model, t.AgreementID, t.EffectiveDate
}

// price fills the money fields of a line from its terms and units:
// gross = units × unit price rounded half-even to the currency's minor
// unit; the platform's share rounded likewise, the publisher's the
// remainder (Split).
func (l *Line) price() error {
	t := l.terms
	if t == nil {
		return nil
	}
	if t.Model == ModelFree {
		l.Units = 0
		l.UnitPrice, l.Gross, l.PlatformShare, l.PublisherShare = "0", "0", "0", "0"
		l.PlatformPercent = t.PlatformPercent.Text('f')
		return nil
	}
	minor, err := MinorUnits(t.Currency)
	if err != nil {
		return err
	}
	gross, err := mul(apd.New(l.Units, 0), t.Price)
	if err != nil {
		return err
	}
	if gross, err = Round(gross, minor); err != nil {
		return err
	}
	platform, publisher, err := Split(gross, t.PlatformPercent, minor)
	if err != nil {
		return err
	}
	l.Currency, l.UnitPrice, l.PlatformPercent = t.Currency, t.Price.Text('f'), t.PlatformPercent.Text('f')
	l.Gross, l.PlatformShare, l.PublisherShare = Format(gross, minor), Format(platform, minor), Format(publisher, minor)
	return nil
}

// total sums the priced lines per currency, exactly: the totals are the
// sums of the lines as shown, so they add up by construction.
func total(lines []Line) ([]Total, error) {
	type sums struct {
		gross, platform, publisher *apd.Decimal
		n                          int
	}
	by := map[string]*sums{}
	for _, l := range lines {
		if l.Status != StatusPriced || l.Currency == "" {
			continue
		}
		s := by[l.Currency]
		if s == nil {
			s = &sums{apd.New(0, 0), apd.New(0, 0), apd.New(0, 0), 0}
			by[l.Currency] = s
		}
		for _, f := range []struct {
			into **apd.Decimal
			v    string
		}{{&s.gross, l.Gross}, {&s.platform, l.PlatformShare}, {&s.publisher, l.PublisherShare}} {
			d, err := ParseAmount(f.v)
			if err != nil {
				return nil, err
			}
			if *f.into, err = add(*f.into, d); err != nil {
				return nil, err
			}
		}
		s.n++
	}
	var out []Total
	for c, s := range by {
		minor, err := MinorUnits(c)
		if err != nil {
			return nil, err
		}
		out = append(out, Total{Currency: c, Gross: Format(s.gross, minor), PlatformShare: Format(s.platform, minor),
			PublisherShare: Format(s.publisher, minor), Lines: s.n})
	}
	slices.SortFunc(out, func(a, b Total) int { return cmp.Compare(a.Currency, b.Currency) })
	return out, nil
}

// sortLines puts lines in the one order a statement shows them; their
// labels must be set (label).
func sortLines(lines []Line) {
	slices.SortStableFunc(lines, func(a, b Line) int {
		return cmp.Or(cmp.Compare(a.Extension, b.Extension), cmp.Compare(a.Tenant, b.Tenant),
			cmp.Compare(a.OriginalPeriod, b.OriginalPeriod), a.TermsEffective.Compare(b.TermsEffective),
			cmp.Compare(a.Model, b.Model), cmp.Compare(a.Status, b.Status), cmp.Compare(a.termsKey(), b.termsKey()))
	})
}

// termsKey tells apart two terms of one model in force from the same
// date (the lines' last sort key): "" without terms.
func (l *Line) termsKey() string {
	if l.terms == nil {
		return ""
	}
	return l.terms.Key()
}
