package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// NoSegment is the segment of usage no terms were in force for.
const NoSegment = store.NoWindow

// Usage is what statements need of the usage store: sums of the events
// grouped per version, tenant, type and terms window, where the events are
// (store.Statements.SumUsage).
type Usage interface {
	SumUsage(ctx context.Context, q store.UsageSumQuery) ([]store.UsageSum, error)
}

// Versions is what statements need of the version store: every version of
// a publisher's extensions with its evidence, where terms are read from.
type Versions interface {
	PublisherVersions(ctx context.Context, publisher string) ([]*store.Version, error)
}

// Closed is what statements need of the closed-statement store.
type Closed interface {
	ClosedStatements(ctx context.Context, publisher string) ([]*store.ClosedStatement, error)
}

// Builder computes statements.
type Builder struct {
	Usage    Usage
	Versions Versions
	Closed   Closed
	// PublisherKeys returns the fingerprints of a publisher's keys from
	// the index config (publishers: keys); when it returns any, only terms
	// signed by one of them count for that publisher's extensions. Nil or
	// none: every terms attestation the index verified counts.
	PublisherKeys func(publisher string) []string
}

// ErrPeriodOpen is returned when a closed statement is asked for and the
// period is open.
var ErrPeriodOpen = errors.New("period not closed")

// Segments reads the terms of every version of publisher's extensions and
// returns their windows, numbered, and the terms that were ignored.
func (b *Builder) Segments(ctx context.Context, publisher string) ([]Segment, []string, error) {
	vs, err := b.Versions.PublisherVersions(ctx, publisher)
	if err != nil {
		return nil, nil, fmt.Errorf("statement of %s: read versions: %w", publisher, err)
	}
	var trusted func(string) bool
	if b.PublisherKeys != nil {
		if keys := b.PublisherKeys(publisher); len(keys) > 0 {
			trusted = func(fp string) bool { return slices.Contains(keys, fp) }
		}
	}
	var segs []Segment
	var problems []string
	for _, v := range vs {
		if v.Publisher() != publisher {
			continue // never another publisher's, whatever a store returns
		}
		terms, p := TrustedTerms(v.Evidence, trusted)
		for _, s := range p {
			problems = append(problems, v.Name+"@"+v.Version+": "+s)
		}
		for _, s := range Segments(v.Name, v.Version, terms) {
			s.ID = len(segs)
			segs = append(segs, s)
		}
	}
	return segs, problems, nil
}

// Preview computes publisher's statement of period from the events
// received before cutoff. A closed period is returned as it was frozen.
func (b *Builder) Preview(ctx context.Context, publisher, period string, cutoff time.Time) (*Statement, error) {
	from, to, err := ParsePeriod(period)
	if err != nil {
		return nil, err
	}
	closed, err := b.Closed.ClosedStatements(ctx, publisher)
	if err != nil {
		return nil, fmt.Errorf("statement of %s %s: %w", publisher, period, err)
	}
	for _, c := range closed {
		if c.Period == period {
			return DecodeStatement(c.Body)
		}
	}
	segs, problems, err := b.Segments(ctx, publisher)
	if err != nil {
		return nil, err
	}
	st := &Statement{Kind: StatementKind, SchemaVersion: StatementSchemaVersion, Publisher: publisher, Period: period,
		From: from, To: to, Status: StatementOpen, Cutoff: cutoff.UTC(), Problems: problems, Lines: []Line{}, Totals: []Total{}}
	byID := map[int]*Segment{}
	for i := range segs {
		byID[segs[i].ID] = &segs[i]
	}
	lines := map[string]*Line{}
	windows := make([]store.TermsWindow, len(segs))
	for i, s := range segs {
		windows[i] = store.TermsWindow{ID: s.ID, Name: s.Name, Version: s.Version, From: s.From, To: s.To}
	}
	collect := func(q store.UsageSumQuery, original string) error {
		q.Windows = windows
		sums, err := b.Usage.SumUsage(ctx, q)
		if err != nil {
			return fmt.Errorf("statement of %s %s: usage: %w", publisher, period, err)
		}
		for _, s := range sums {
			var t *Terms
			key := "noTerms"
			if seg := byID[s.Window]; seg != nil && seg.Name == s.Name && seg.Version == s.Version {
				t, key = seg.Terms, seg.Terms.Key()
			}
			k := strings.Join([]string{s.Name, s.Tenant, original, key}, "\x00")
			l := lines[k]
			if l == nil {
				l = &Line{Extension: s.Name, Tenant: s.Tenant, terms: t, OriginalPeriod: original, Adjustment: original != "", first: s.First}
				lines[k] = l
			}
			if !slices.Contains(l.Versions, s.Version) {
				l.Versions = append(l.Versions, s.Version)
			}
			if s.First.Before(l.first) {
				l.first = s.First
			}
			switch s.Type {
			case TypePull:
				l.Pulls += s.Quantity
			case TypeInstall:
				l.Installs += s.Quantity
			case TypeSeats:
				l.Seats = max(l.Seats, s.MaxQuantity)
			}
		}
		return nil
	}
	if err := collect(store.UsageSumQuery{Publisher: publisher, From: from, To: to, ReceivedTo: cutoff}, ""); err != nil {
		return nil, err
	}
	// Usage of closed periods that arrived after they closed and during
	// this month: adjustments (docs/billing.md).
	billed := map[string]int64{}
	for _, c := range closed {
		if c.Period >= period {
			continue
		}
		qFrom, qTo, err := ParsePeriod(c.Period)
		if err != nil {
			return nil, err
		}
		rFrom, rTo := c.Cutoff, cutoff
		if from.After(rFrom) {
			rFrom = from
		}
		if to.Before(rTo) {
			rTo = to
		}
		if rFrom.Before(rTo) {
			if err := collect(store.UsageSumQuery{Publisher: publisher, From: qFrom, To: qTo, ReceivedFrom: rFrom, ReceivedTo: rTo}, c.Period); err != nil {
				return nil, err
			}
		}
		if err := addBilled(billed, c); err != nil {
			return nil, err
		}
	}
	for _, l := range lines {
		slices.SortFunc(l.Versions, store.CompareVersions)
		l.label()
		st.Lines = append(st.Lines, *l)
	}
	sortLines(st.Lines)
	units(st.Lines, billed)
	for i := range st.Lines {
		if err := st.Lines[i].price(); err != nil {
			return nil, fmt.Errorf("statement of %s %s: %s: %w", publisher, period, st.Lines[i].Extension, err)
		}
	}
	if st.Totals, err = total(st.Lines); err != nil {
		return nil, err
	}
	if st.Totals == nil {
		st.Totals = []Total{}
	}
	return st, nil
}

// billedKey names what a monthly model billed: extension, tenant, model,
// for the period the units are for.
func billedKey(period, extension, tenant, model string) string {
	return strings.Join([]string{period, extension, tenant, model}, "\x00")
}

// addBilled records the monthly units a closed statement billed, for its
// own period and, in its adjustment lines, for earlier ones.
func addBilled(billed map[string]int64, c *store.ClosedStatement) error {
	st, err := DecodeStatement(c.Body)
	if err != nil {
		return fmt.Errorf("closed statement %s %s: %w", c.Publisher, c.Period, err)
	}
	for _, l := range st.Lines {
		if l.Status != StatusPriced || (l.Model != ModelFlat && l.Model != ModelPerSeat) {
			continue
		}
		p := st.Period
		if l.Adjustment {
			p = l.OriginalPeriod
		}
		billed[billedKey(p, l.Extension, l.Tenant, l.Model)] += l.Units
	}
	return nil
}

// units sets what each line bills (docs/billing.md):
//   - usage: each pull and install (or those its terms' unit names);
//   - per-seat: once per tenant and month, the month's highest seat count,
//     on the line of the terms in force at the tenant's first event;
//   - flat: once per tenant and month when there was any usage, on the
//     line of the terms in force at the tenant's first event;
//   - free: nothing.
//
// An adjustment of a monthly model bills only what its period's closed
// statements did not (billed).
func units(lines []Line, billed map[string]int64) {
	type month struct {
		first int   // the line that bills
		seats int64 // the month's highest seat count
	}
	months := map[string]*month{}
	for i := range lines {
		l := &lines[i]
		t := l.terms
		if t == nil {
			continue
		}
		switch t.Model {
		case ModelUsage:
			switch t.Unit {
			case "pull":
				l.Units = l.Pulls
			case "install":
				l.Units = l.Installs
			default:
				l.Units = l.Pulls + l.Installs
			}
		case ModelFlat, ModelPerSeat:
			k := billedKey(l.OriginalPeriod, l.Extension, l.Tenant, t.Model)
			m := months[k]
			if m == nil {
				m = &month{first: i}
				months[k] = m
			}
			if l.first.Before(lines[m.first].first) {
				m.first = i
			}
			m.seats = max(m.seats, l.Seats)
		}
	}
	for k, m := range months {
		l := &lines[m.first]
		want := int64(1)
		if l.terms.Model == ModelPerSeat {
			want = m.seats
		}
		if l.Adjustment {
			if done := billed[k]; done > 0 {
				want = max(0, want-done)
				l.Note = fmt.Sprintf("%s already billed %d unit(s) for %s", l.OriginalPeriod, done, l.Extension)
			}
		}
		l.Units = want
		for i := range lines {
			o := &lines[i]
			if i != m.first && o.terms != nil && o.terms.Model == l.terms.Model && billedKey(o.OriginalPeriod, o.Extension, o.Tenant, o.terms.Model) == k {
				o.Units = 0
				o.Note = "billed once a month on the line of the terms in force at the tenant's first event"
			}
		}
	}
}

// EncodeStatement is the statement's JSON as it is signed: indented, with
// a final newline, so the file a publisher pulls reads well.
func EncodeStatement(st *Statement) ([]byte, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeStatement reads a statement document strictly (unknown fields,
// trailing data and a wrong kind are errors).
func DecodeStatement(data []byte) (*Statement, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var st Statement
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if dec.More() {
		return nil, errors.New("statement: trailing data after the JSON document")
	}
	if st.Kind != StatementKind || st.SchemaVersion != StatementSchemaVersion {
		return nil, fmt.Errorf("statement: kind %q schemaVersion %q: want %s %s", st.Kind, st.SchemaVersion, StatementKind, StatementSchemaVersion)
	}
	if _, _, err := ParsePeriod(st.Period); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return &st, nil
}
