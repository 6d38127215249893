package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrStatementClosed is returned when a publisher's statement of a period
// is closed a second time: the first close stands (index/billing).
var ErrStatementClosed = errors.New("statement already closed")

// ClosedStatement is a frozen revenue-share statement: the JSON that was
// signed, its signature and where it was pushed. Nothing of it changes
// after CloseStatement but Reference, set once when the push succeeds.
type ClosedStatement struct {
	Publisher string
	Period    string // YYYY-MM
	// Cutoff: the statement counts the usage events received before it.
	Cutoff   time.Time
	ClosedAt time.Time
	// Body is the statement JSON exactly as signed.
	Body []byte
	// Signature is the base64 signature of Body (cosign sign-blob's).
	Signature string
	// Signer is the fingerprint of the key that signed.
	Signer string
	// Reference is the OCI reference (repository@digest) it was pushed
	// to; "" until the push succeeded.
	Reference string
}

// Statements keeps closed statements; it is part of Store.
type Statements interface {
	// PublisherVersions lists every version of publisher's extensions,
	// whole (with evidence), from the repositories that own their names.
	PublisherVersions(ctx context.Context, publisher string) ([]*Version, error)
	// PublisherTenants maps every publisher namespace with a version in
	// the store to the tenant that owns its names, or to "" when its
	// names are owned by several tenants (claimed name by name, without a
	// publishers: entry): then no tenant's token may read its statement,
	// which would show the other tenants' customers and revenue.
	PublisherTenants(ctx context.Context) (map[string]string, error)
	// CloseStatement stores a closed statement; when the publisher's
	// period is closed already it stores nothing and returns
	// ErrStatementClosed (the first of racing replicas wins).
	CloseStatement(ctx context.Context, c *ClosedStatement) error
	// ClosedStatements lists a publisher's closed statements ("" for all
	// publishers), oldest period first.
	ClosedStatements(ctx context.Context, publisher string) ([]*ClosedStatement, error)
	// SetStatementReference records where a closed statement was pushed.
	SetStatementReference(ctx context.Context, publisher, period, reference string) error
	// SumUsage sums the usage events q selects per extension version,
	// tenant, type and terms window, grouping in SQL: a month of millions
	// of events comes back as a few rows.
	SumUsage(ctx context.Context, q UsageSumQuery) ([]UsageSum, error)
}

// TermsWindow is a window of time, [From, To) with To zero open-ended, in
// which one version of an extension is under one set of terms
// (index/billing's segments).
type TermsWindow struct {
	ID            int
	Name, Version string
	From, To      time.Time
}

// NoWindow is the window of usage that no terms window covers.
const NoWindow = -1

// UsageSumQuery selects usage events to sum for a statement.
type UsageSumQuery struct {
	// Publisher limits the events to one publisher's extensions.
	Publisher string
	// From and To bound the events' own time (UsageEvent.At), [From, To).
	From, To time.Time
	// ReceivedFrom and ReceivedTo bound when the index recorded them,
	// [ReceivedFrom, ReceivedTo); zero means unbounded.
	ReceivedFrom, ReceivedTo time.Time
	// Windows are the terms windows: an event of Name@Version whose time
	// lies in one is summed under its ID, an event in none under NoWindow.
	// The windows of one version must not overlap.
	Windows []TermsWindow
}

// UsageSum is one group of a UsageSumQuery.
type UsageSum struct {
	Name, Version, Tenant, Type string
	Window                      int
	// Quantity is the sum of the events' quantities, MaxQuantity the
	// largest (a seat report is a level, not an increment).
	Quantity, MaxQuantity int64
	// First is the earliest event time of the group; where the daily
	// aggregate answered, the start of its earliest day (enough to tell
	// which terms window a tenant used first: windows change only on days
	// read from the raw events).
	First time.Time
}

func (s *sqlStore) PublisherVersions(ctx context.Context, publisher string) ([]*Version, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+versionColumns+` FROM versions WHERE publisher = ?
		AND EXISTS (SELECT 1 FROM name_owners o WHERE o.name = versions.name AND o.tenant = versions.tenant AND o.repository = versions.repository)
		ORDER BY name, version`), publisher)
	if err != nil {
		return nil, fmt.Errorf("read the versions of publisher %s: %w", publisher, err)
	}
	return s.scanVersions(rows, true)
}

func (s *sqlStore) CloseStatement(ctx context.Context, c *ClosedStatement) error {
	if c.ClosedAt.IsZero() {
		c.ClosedAt = time.Now()
	}
	r, err := s.db.ExecContext(ctx, s.q(`INSERT INTO statements (publisher, period, cutoff, closed_at, body, signature, signer, reference)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		c.Publisher, c.Period, c.Cutoff.UnixNano(), c.ClosedAt.UnixNano(), c.Body, c.Signature, c.Signer, c.Reference)
	if err != nil {
		return fmt.Errorf("close the statement of %s %s: %w", c.Publisher, c.Period, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("close the statement of %s %s: %w", c.Publisher, c.Period, ErrStatementClosed)
	}
	return nil
}

func (s *sqlStore) ClosedStatements(ctx context.Context, publisher string) ([]*ClosedStatement, error) {
	query := `SELECT publisher, period, cutoff, closed_at, body, signature, signer, reference FROM statements`
	var args []any
	if publisher != "" {
		query += ` WHERE publisher = ?`
		args = append(args, publisher)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY period, publisher`), args...)
	if err != nil {
		return nil, fmt.Errorf("read closed statements: %w", err)
	}
	defer rows.Close()
	var out []*ClosedStatement
	for rows.Next() {
		c := &ClosedStatement{}
		var cutoff, closed int64
		if err := rows.Scan(&c.Publisher, &c.Period, &cutoff, &closed, &c.Body, &c.Signature, &c.Signer, &c.Reference); err != nil {
			return nil, fmt.Errorf("read closed statements: %w", err)
		}
		c.Cutoff, c.ClosedAt = time.Unix(0, cutoff).UTC(), time.Unix(0, closed).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *sqlStore) SetStatementReference(ctx context.Context, publisher, period, reference string) error {
	if strings.TrimSpace(reference) == "" {
		return errors.New("set statement reference: empty reference")
	}
	r, err := s.db.ExecContext(ctx, s.q(`UPDATE statements SET reference = ? WHERE publisher = ? AND period = ?`), reference, publisher, period)
	if err != nil {
		return fmt.Errorf("record where the statement of %s %s was pushed: %w", publisher, period, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("record where the statement of %s %s was pushed: %w", publisher, period, ErrNotFound)
	}
	return nil
}

// SumUsage groups in SQL. A month of one publisher's usage is read from
// the daily aggregate (usage_daily) wherever it can be: the days that lie
// wholly inside terms windows come from there, and only the days a window
// starts or ends within, and the days events arrived on at or after the
// cutoff (which the aggregate cannot leave out), from the raw events. The
// raw events are read alone when the query bounds arrival from below
// (adjustments, few) or more than maxLateEvents arrived late. The windows travel as one JSON parameter (jsonb_to_recordset on
// PostgreSQL, json_each on SQLite) and are joined to the rows by name,
// version and time, so the database returns one row per version, tenant,
// type and window. Everything is read in one snapshot.
func (s *sqlStore) SumUsage(ctx context.Context, q UsageSumQuery) ([]UsageSum, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
	}
	defer tx.Rollback()
	if q.ReceivedFrom.IsZero() && q.Publisher != "" {
		// The days of events that arrived at or after the cutoff are read
		// raw (the aggregate cannot leave those events out); there are few.
		var late []int
		if !q.ReceivedTo.IsZero() {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT at FROM usage_events WHERE publisher = ? AND received_at >= ?
				AND at >= ? AND at < ? AND month >= ? AND month <= ? LIMIT ?`), q.Publisher, q.ReceivedTo.UnixNano(), q.From.UnixNano(), q.To.UnixNano(),
				MonthOf(q.From), MonthOf(q.To.Add(-time.Nanosecond)), maxLateEvents+1)
			if err != nil {
				return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
			}
			n := 0
			for rows.Next() {
				var at int64
				if err := rows.Scan(&at); err != nil {
					rows.Close()
					return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
				}
				late = append(late, DayOf(time.Unix(0, at)))
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
			}
			if n > maxLateEvents {
				return s.sumRaw(ctx, tx, q, "")
			}
		}
		return s.sumDaily(ctx, tx, q, late)
	}
	return s.sumRaw(ctx, tx, q, "")
}

// windowsJSON is the windows as the SQL reads them: times in Unix
// nanoseconds and days as yyyymmdd, an open end as the largest value.
func windowsJSON(ws []TermsWindow) (string, error) {
	type window struct {
		ID      int    `json:"id"`
		Name    string `json:"name"`
		Version string `json:"version"`
		From    int64  `json:"from"`
		To      int64  `json:"to"`
		FromDay int    `json:"fromDay"`
		ToDay   int    `json:"toDay"`
	}
	out := make([]window, 0, len(ws))
	for _, w := range ws {
		to, toDay := int64(math.MaxInt64), 99991231
		if !w.To.IsZero() {
			to, toDay = w.To.UnixNano(), DayOf(w.To)
		}
		out = append(out, window{w.ID, w.Name, w.Version, w.From.UnixNano(), to, DayOf(w.From), toDay})
	}
	js, err := json.Marshal(out)
	return string(js), err
}

// windowsCTE is the WITH clause that makes the windows a table seg (id,
// name, version, s_from, s_to, from_day, to_day) from one parameter.
func (s *sqlStore) windowsCTE() string {
	if s.d.name == "sqlite" {
		return `WITH seg AS (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.name') AS name,
			json_extract(value, '$.version') AS version, json_extract(value, '$.from') AS s_from, json_extract(value, '$.to') AS s_to,
			json_extract(value, '$.fromDay') AS from_day, json_extract(value, '$.toDay') AS to_day FROM json_each(?))`
	}
	return `WITH seg AS (SELECT id, name, version, "from" AS s_from, "to" AS s_to, "fromDay" AS from_day, "toDay" AS to_day
		FROM jsonb_to_recordset(?::jsonb) AS w(id int, name text, version text, "from" bigint, "to" bigint, "fromDay" int, "toDay" int))`
}

// sumRaw sums the raw events; extra is a further condition on e (built
// from integers only, never from input text).
func (s *sqlStore) sumRaw(ctx context.Context, tx *sql.Tx, q UsageSumQuery, extra string) ([]UsageSum, error) {
	js, err := windowsJSON(q.Windows)
	if err != nil {
		return nil, err
	}
	query := s.windowsCTE() + `
		SELECT e.name, e.version, e.tenant, e.type, COALESCE(seg.id, -1), SUM(e.quantity), MAX(e.quantity), MIN(e.at)
		FROM usage_events e LEFT JOIN seg ON seg.name = e.name AND seg.version = e.version AND e.at >= seg.s_from AND e.at < seg.s_to
		WHERE e.at >= ? AND e.at < ? AND e.month >= ? AND e.month <= ?` + extra
	args := []any{js, q.From.UnixNano(), q.To.UnixNano(), MonthOf(q.From), MonthOf(q.To.Add(-time.Nanosecond))}
	if q.Publisher != "" {
		query += ` AND e.publisher = ?`
		args = append(args, q.Publisher)
	}
	if !q.ReceivedFrom.IsZero() {
		query += ` AND e.received_at >= ?`
		args = append(args, q.ReceivedFrom.UnixNano())
	}
	if !q.ReceivedTo.IsZero() {
		query += ` AND e.received_at < ?`
		args = append(args, q.ReceivedTo.UnixNano())
	}
	rows, err := tx.QueryContext(ctx, s.q(query+` GROUP BY e.name, e.version, e.tenant, e.type, COALESCE(seg.id, -1)`), args...)
	if err != nil {
		return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
	}
	defer rows.Close()
	var out []UsageSum
	for rows.Next() {
		var u UsageSum
		var first int64
		if err := rows.Scan(&u.Name, &u.Version, &u.Tenant, &u.Type, &u.Window, &u.Quantity, &u.MaxQuantity, &first); err != nil {
			return nil, fmt.Errorf("sum usage of %s: %w", q.Publisher, err)
		}
		u.First = time.Unix(0, first).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// maxLateEvents bounds the events after a cutoff whose days a statement
// reads raw; with more, it reads the whole period raw.
const maxLateEvents = 10000

// sumDaily sums the daily aggregate over the days no window starts or
// ends within and no late event (its days in late) falls on, and the raw
// events of those days, and merges the two.
func (s *sqlStore) sumDaily(ctx context.Context, tx *sql.Tx, q UsageSumQuery, late []int) ([]UsageSum, error) {
	var split []int // the days read raw, in [From, To)
	seen := map[int]bool{}
	for _, d := range late {
		if !seen[d] {
			seen[d] = true
			split = append(split, d)
		}
	}
	for _, w := range q.Windows {
		for _, t := range []time.Time{w.From, w.To, q.From, q.To} {
			if t.IsZero() || t.Before(q.From) || !t.Before(q.To) || t.UTC().Truncate(24*time.Hour).Equal(t.UTC()) && t.UTC().Hour() == 0 {
				continue
			}
			if d := DayOf(t); !seen[d] {
				seen[d] = true
				split = append(split, d)
			}
		}
	}
	js, err := windowsJSON(q.Windows)
	if err != nil {
		return nil, err
	}
	query := s.windowsCTE() + `
		SELECT d.name, d.version, d.tenant, d.type, COALESCE(seg.id, -1), SUM(d.quantity), MAX(d.peak), MIN(d.day)
		FROM usage_daily d LEFT JOIN seg ON seg.name = d.name AND seg.version = d.version AND d.day >= seg.from_day AND d.day < seg.to_day
		WHERE d.publisher = ? AND d.day >= ? AND d.day < ?`
	fromDay, toDay := DayOf(q.From), DayOf(q.To.Add(-time.Nanosecond))+1
	if !q.From.Equal(q.From.UTC().Truncate(24 * time.Hour)) {
		fromDay++ // a partial first day is read raw
		split = append(split, DayOf(q.From))
	}
	var rawDays []string
	if len(split) > 0 {
		var days []string
		for _, d := range split {
			days = append(days, strconv.Itoa(d))
			start := time.Date(d/10000, time.Month(d/100%100), d%100, 0, 0, 0, 0, time.UTC)
			rawDays = append(rawDays, fmt.Sprintf("(e.at >= %d AND e.at < %d)", start.UnixNano(), start.AddDate(0, 0, 1).UnixNano()))
		}
		query += ` AND d.day NOT IN (` + strings.Join(days, ", ") + `)`
	}
	out := map[[5]string]*UsageSum{}
	var order [][5]string
	merge := func(u UsageSum) {
		k := [5]string{u.Name, u.Version, u.Tenant, u.Type, strconv.Itoa(u.Window)}
		m := out[k]
		if m == nil {
			out[k] = &u
			order = append(order, k)
			return
		}
		m.Quantity += u.Quantity
		m.MaxQuantity = max(m.MaxQuantity, u.MaxQuantity)
		if u.First.Before(m.First) {
			m.First = u.First
		}
	}
	rows, err := tx.QueryContext(ctx, s.q(query+` GROUP BY d.name, d.version, d.tenant, d.type, COALESCE(seg.id, -1)`), js, q.Publisher, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("sum usage of %s: daily: %w", q.Publisher, err)
	}
	for rows.Next() {
		var u UsageSum
		var day int
		if err := rows.Scan(&u.Name, &u.Version, &u.Tenant, &u.Type, &u.Window, &u.Quantity, &u.MaxQuantity, &day); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sum usage of %s: daily: %w", q.Publisher, err)
		}
		u.First = time.Date(day/10000, time.Month(day/100%100), day%100, 0, 0, 0, 0, time.UTC)
		merge(u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sum usage of %s: daily: %w", q.Publisher, err)
	}
	if len(rawDays) > 0 {
		raw, err := s.sumRaw(ctx, tx, q, ` AND (`+strings.Join(rawDays, " OR ")+`)`)
		if err != nil {
			return nil, err
		}
		for _, u := range raw {
			merge(u)
		}
	}
	res := make([]UsageSum, 0, len(order))
	for _, k := range order {
		res = append(res, *out[k])
	}
	return res, nil
}

func (s *sqlStore) PublisherTenants(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT publisher, tenant FROM versions
		WHERE EXISTS (SELECT 1 FROM name_owners o WHERE o.name = versions.name AND o.tenant = versions.tenant AND o.repository = versions.repository)`)
	if err != nil {
		return nil, fmt.Errorf("read the publishers: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, t string
		if err := rows.Scan(&p, &t); err != nil {
			return nil, fmt.Errorf("read the publishers: %w", err)
		}
		if prev, ok := out[p]; ok && prev != t {
			t = "" // names of the namespace owned by several tenants: none of them owns its statement
		}
		out[p] = t
	}
	return out, rows.Err()
}
