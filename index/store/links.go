package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Links is what a version says about other versions and keys: the
// dependencies its descriptor declares and the keys whose signatures on it
// verified. The impact graph (index/impact) is built from them.
type Links struct {
	Tenant     string
	Name       string
	Version    string
	Digest     string
	Visibility string
	Lifecycle  string
	// Quarantined is the version's quarantine (DESIGN §6.2): seen only by
	// its own tenant and by reviewers, in an impact answer as anywhere.
	Quarantined bool
	// Dependencies are the descriptor's spec.dependencies: a name and a
	// SemVer constraint each.
	Dependencies []Dependency
	// Signers are the fingerprints of the keys whose signatures verified
	// at ingest (under the index's policy; none without one).
	Signers []string
	Seq     int64
}

// Dependency is one of a descriptor's spec.dependencies.
type Dependency struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// LinkFeed is the change feed of Links: the versions created or refreshed
// after seq, in seq order, at most limit of them (Changes, with what the
// descriptor and the evidence say of other versions and keys).
type LinkFeed interface {
	LinkChanges(ctx context.Context, after int64, limit int) ([]*Links, error)
}

// LinkChanges reads descriptors and evidence but decodes only the few
// fields Links keeps.
func (s *sqlStore) LinkChanges(ctx context.Context, after int64, limit int) ([]*Links, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT tenant, name, version, digest, visibility, lifecycle, quarantined, seq, descriptor, evidence
		FROM versions WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("link changes after %d: %w", after, err)
	}
	defer rows.Close()
	var out []*Links
	for rows.Next() {
		l := &Links{}
		var descriptor, evidence sql.NullString
		if err := rows.Scan(&l.Tenant, &l.Name, &l.Version, &l.Digest, &l.Visibility, &l.Lifecycle, &l.Quarantined, &l.Seq, &descriptor, &evidence); err != nil {
			return nil, fmt.Errorf("link changes after %d: %w", after, err)
		}
		if descriptor.Valid {
			var d struct {
				Spec struct {
					Dependencies []Dependency `json:"dependencies"`
				} `json:"spec"`
			}
			if err := json.Unmarshal([]byte(descriptor.String), &d); err != nil {
				return nil, fmt.Errorf("%s@%s (%s): stored descriptor: %w", l.Name, l.Version, l.Tenant, err)
			}
			l.Dependencies = d.Spec.Dependencies
		}
		if evidence.Valid {
			var e struct {
				Signatures []struct {
					Fingerprint string `json:"fingerprint"`
					Verified    bool   `json:"verified"`
				} `json:"signatures"`
			}
			if err := json.Unmarshal([]byte(evidence.String), &e); err != nil {
				return nil, fmt.Errorf("%s@%s (%s): stored evidence: %w", l.Name, l.Version, l.Tenant, err)
			}
			for _, sig := range e.Signatures {
				if sig.Verified && sig.Fingerprint != "" {
					l.Signers = append(l.Signers, sig.Fingerprint)
				}
			}
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Prior is what a version was before a refresh, for a write hook that
// reports transitions (yanked, review revoked).
type Prior struct {
	Lifecycle string
	Reviewed  bool
	// Quarantined: it had not passed its stage's policy (a release is
	// when other tenants first may hear of it).
	Quarantined bool
}

// Write is one UpsertVersion as a WriteHook sees it.
type Write struct {
	Version *Version
	Result  UpsertResult
	// Before is the stored version's state when the write refreshed it
	// (Result.Updated); nil when it was created or its tag moved.
	Before *Prior
}

// WriteHook runs inside UpsertVersion's transaction, after the write and
// before the commit: what it writes in tx commits with the version or not
// at all, and an error it returns undoes the write. The subscriptions'
// outbox is one (a delivery job per event, queued in the same
// transaction), so an event is neither lost when the process dies after
// the write nor sent for a write that did not commit.
type WriteHook func(ctx context.Context, tx *sql.Tx, w *Write) error

type writeHookKey struct{}

// WithWriteHook returns a context under which UpsertVersion runs h in its
// transaction. A write that changes nothing (an event already recorded,
// WithEvent) does not run it.
func WithWriteHook(ctx context.Context, h WriteHook) context.Context {
	return context.WithValue(ctx, writeHookKey{}, h)
}

func runWriteHook(ctx context.Context, tx *sql.Tx, w *Write) error {
	h, _ := ctx.Value(writeHookKey{}).(WriteHook)
	if h == nil {
		return nil
	}
	if err := h(ctx, tx, w); err != nil {
		return fmt.Errorf("%s@%s: %w", w.Version.Name, w.Version.Version, err)
	}
	return nil
}

// DeadLetter is a subscription delivery the index gave up on after its
// last attempt: kept for the operator (GET /api/v1/subscriptions/dead-letters).
type DeadLetter struct {
	ID           int64           `json:"id"`
	Subscription string          `json:"subscription"`
	EventID      string          `json:"eventId"`
	Type         string          `json:"type"`
	Subject      string          `json:"subject,omitempty"`
	URL          string          `json:"url"`
	Attempts     int             `json:"attempts"`
	Error        string          `json:"error"`
	Event        json.RawMessage `json:"event"`
	CreatedAt    time.Time       `json:"createdAt"`
}

// DeadLetterStore keeps the dead letters; both SQL stores are one.
type DeadLetterStore interface {
	// AddDeadLetter records d; one subscription's event is recorded once
	// (a second record of it changes nothing and reports false).
	AddDeadLetter(ctx context.Context, d *DeadLetter) (bool, error)
	// DeadLetters lists them newest first.
	DeadLetters(ctx context.Context) ([]*DeadLetter, error)
}

func (s *sqlStore) AddDeadLetter(ctx context.Context, d *DeadLetter) (bool, error) {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	r, err := s.db.ExecContext(ctx, s.q(`INSERT INTO dead_letters (subscription, event_id, type, subject, url, attempts, error, event, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		d.Subscription, d.EventID, d.Type, d.Subject, d.URL, d.Attempts, d.Error, string(d.Event), d.CreatedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("dead letter %s for %s: %w", d.EventID, d.Subscription, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

func (s *sqlStore) DeadLetters(ctx context.Context) ([]*DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, subscription, event_id, type, subject, url, attempts, error, event, created_at
		FROM dead_letters ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	defer rows.Close()
	var out []*DeadLetter
	for rows.Next() {
		d := &DeadLetter{}
		var event string
		var created int64
		if err := rows.Scan(&d.ID, &d.Subscription, &d.EventID, &d.Type, &d.Subject, &d.URL, &d.Attempts, &d.Error, &event, &created); err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		d.Event = json.RawMessage(event)
		d.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// UsageUsers says, from the usage aggregate, which tenants used which
// versions of some names: what the blast radius asks of metering (the
// impact.Usage the index makes of it). Both SQL stores implement it.
type UsageUsers interface {
	// UsersOf calls fn once per tenant, name and version with usage
	// recorded (pulls, installs or seats), for the names given.
	UsersOf(ctx context.Context, names []string, fn func(tenant, name, version string)) error
}

// usersPerQuery bounds a query's IN list.
const usersPerQuery = 500

// UsersOf reads the monthly roll-up through its name index: it has a row
// for every month, version and tenant that usage_daily has days of, and a
// few thousand rows a month where usage_daily has a hundred thousand.

func (s *sqlStore) UsersOf(ctx context.Context, names []string, fn func(tenant, name, version string)) error {
	for len(names) > 0 {
		n := min(len(names), usersPerQuery)
		chunk := names[:n]
		names = names[n:]
		args := make([]any, len(chunk))
		for i, name := range chunk {
			args[i] = name
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT DISTINCT tenant, name, version FROM usage_rollup_monthly WHERE name IN (`+marks+`)`), args...)
		if err != nil {
			return fmt.Errorf("read who used %d names: %w", len(chunk), err)
		}
		for rows.Next() {
			var tenant, name, version string
			if err := rows.Scan(&tenant, &name, &version); err != nil {
				rows.Close()
				return fmt.Errorf("read who used %d names: %w", len(chunk), err)
			}
			fn(tenant, name, version)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read who used %d names: %w", len(chunk), err)
		}
	}
	return nil
}
