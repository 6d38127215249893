package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// the store to the tenant that owns its names.
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
	// First is the earliest event time of the group.
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

// SumUsage groups in SQL: the windows travel as one JSON parameter
// (jsonb_to_recordset on PostgreSQL, json_each on SQLite) and are joined
// to the events by name, version and time, so the database returns one row
// per version, tenant, type and window. On PostgreSQL the month bounds let
// the planner read only the period's partitions.
func (s *sqlStore) SumUsage(ctx context.Context, q UsageSumQuery) ([]UsageSum, error) {
	type window struct {
		ID      int    `json:"id"`
		Name    string `json:"name"`
		Version string `json:"version"`
		From    int64  `json:"from"`
		To      int64  `json:"to"`
	}
	ws := make([]window, 0, len(q.Windows))
	for _, w := range q.Windows {
		to := int64(math.MaxInt64)
		if !w.To.IsZero() {
			to = w.To.UnixNano()
		}
		ws = append(ws, window{w.ID, w.Name, w.Version, w.From.UnixNano(), to})
	}
	js, err := json.Marshal(ws)
	if err != nil {
		return nil, err
	}
	var seg string
	if s.d.name == "sqlite" {
		seg = `SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.name') AS name, json_extract(value, '$.version') AS version,
			json_extract(value, '$.from') AS s_from, json_extract(value, '$.to') AS s_to FROM json_each(?)`
	} else {
		seg = `SELECT * FROM jsonb_to_recordset(?::jsonb) AS w(id int, name text, version text, "from" bigint, "to" bigint)`
		seg = `SELECT id, name, version, "from" AS s_from, "to" AS s_to FROM (` + seg + `) w0`
	}
	query := `WITH seg AS (` + seg + `)
		SELECT e.name, e.version, e.tenant, e.type, COALESCE(seg.id, -1), SUM(e.quantity), MAX(e.quantity), MIN(e.at)
		FROM usage_events e LEFT JOIN seg ON seg.name = e.name AND seg.version = e.version AND e.at >= seg.s_from AND e.at < seg.s_to
		WHERE e.at >= ? AND e.at < ? AND e.month >= ? AND e.month <= ?`
	args := []any{string(js), q.From.UnixNano(), q.To.UnixNano(), MonthOf(q.From), MonthOf(q.To.Add(-time.Nanosecond))}
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
	rows, err := s.db.QueryContext(ctx, s.q(query+` GROUP BY e.name, e.version, e.tenant, e.type, COALESCE(seg.id, -1)`), args...)
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
		out[p] = t
	}
	return out, rows.Err()
}
