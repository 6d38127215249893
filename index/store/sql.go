package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// dialect holds what differs between SQLite and PostgreSQL; everything
// else is one implementation.
type dialect struct {
	name string
	// placeholder turns the n-th argument (1-based) into its marker.
	placeholder func(n int) string
	// insertIgnore is the clause that makes an insert of an existing key a no-op.
	insertIgnore string
}

var (
	sqliteDialect   = dialect{name: "sqlite", placeholder: func(int) string { return "?" }, insertIgnore: "ON CONFLICT DO NOTHING"}
	postgresDialect = dialect{name: "postgres", placeholder: func(n int) string { return "$" + strconv.Itoa(n) }, insertIgnore: "ON CONFLICT DO NOTHING"}
)

type sqlStore struct {
	db     *sql.DB
	d      dialect
	writes atomic.Int64 // version writes committed through this handle
	// usageMonths holds the months (yyyymm) whose usage_events partition
	// is known to be attached (PostgreSQL).
	usageMonths sync.Map
	// versionStmt reads one whole version by its key, prepared once: the
	// review queue and details read tens of versions a request, and
	// SQLite parsing the statement each time cost more than running it.
	versionStmt *sql.Stmt
}

func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, errors.New("store: sqlite:// needs a path (or :memory:)")
	}
	// WAL lets readers run beside the writer; busy_timeout makes writers
	// queue instead of failing; one connection for :memory:, which is
	// per-connection in SQLite.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	} else {
		// Keep connections: database/sql keeps 2 idle by default, and
		// reopening one (file, pragmas) per request under load dominates.
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
	}
	return newSQLStore(ctx, db, sqliteDialect)
}

func openPostgres(ctx context.Context, url string) (Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16) // the default 2 would reconnect under load
	return newSQLStore(ctx, db, postgresDialect)
}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect) (Store, error) {
	s := &sqlStore{db: db, d: d}
	if err := migrate(ctx, db, d.name); err != nil {
		db.Close()
		return nil, err
	}
	var err error
	if s.versionStmt, err = db.PrepareContext(ctx, s.q(`SELECT `+versionColumns+` FROM versions WHERE tenant = ? AND name = ? AND version = ?`)); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare the version read: %w", err)
	}
	return s, nil
}

// q rewrites ? markers for the dialect.
func (s *sqlStore) q(query string) string {
	if s.d.name == "sqlite" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString(s.d.placeholder(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
func (s *sqlStore) Close() error {
	s.versionStmt.Close()
	return s.db.Close()
}

// headerColumns are what the change feed carries; versionColumns add the
// large JSON documents, read only for one extension at a time.
const (
	headerColumns = `tenant, name, version, repository, digest, kind, title, description, keywords,
	license, factory, visibility, signed, reviewed, allowed, lifecycle, ingested_at, seq, stage, quarantined`
	versionColumns = headerColumns + `, descriptor, decision, evidence, evidence_digests`
)

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func (s *sqlStore) UpsertVersion(ctx context.Context, v *Version) (UpsertResult, error) {
	var res UpsertResult
	if v.IngestedAt.IsZero() {
		v.IngestedAt = time.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	if first, err := s.markEventTx(ctx, tx); err != nil || !first {
		return res, err // !first: this event's write committed already
	}
	if v.Generation == 0 {
		// A writer that read nothing before: its generation is now.
		gens, err := s.generations(ctx, tx, 1)
		if err != nil {
			return res, fmt.Errorf("upsert %s@%s: %w", v.Name, v.Version, err)
		}
		v.Generation = gens[0]
	}
	// Taking the next number locks the counter row until commit, so writes
	// commit in seq order and the change feed never skips one still in
	// flight (a sequence would hand out numbers that commit out of order).
	if err := tx.QueryRowContext(ctx, `UPDATE version_seq SET n = n + 1 RETURNING n`).Scan(&v.Seq); err != nil {
		return res, fmt.Errorf("upsert %s@%s: next seq: %w", v.Name, v.Version, err)
	}
	args := []any{v.Tenant, v.Name, v.Version, v.Repository, v.Digest, v.Kind, v.Title, v.Description,
		strings.Join(v.Keywords, ","), v.License, v.Factory, v.Visibility, v.Signed, v.Reviewed, v.Allowed, v.Lifecycle,
		v.IngestedAt.UnixNano(), v.Seq, v.Stage, v.Quarantined, nullJSON(v.Descriptor), nullJSON(v.Decision), nullJSON(v.Evidence), v.EvidenceDigests, v.Publisher(),
		v.Generation}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	r, err := tx.ExecContext(ctx, s.q(`INSERT INTO versions (`+versionColumns+`, publisher, evidence_gen) VALUES (`+marks+`) `+s.d.insertIgnore), args...)
	if err != nil {
		return res, fmt.Errorf("upsert %s@%s: %w", v.Name, v.Version, err)
	}
	if n, _ := r.RowsAffected(); n == 1 {
		res.Created = true
		if err := runWriteHook(ctx, tx, &Write{Version: v, Result: res}); err != nil {
			return res, err
		}
		return res, s.commit(tx)
	}
	// The version exists: refresh it if the digest is the same, keep it
	// and raise an alert if the tag moved.
	var stored string
	var storedGen int64
	var before Prior
	if err := tx.QueryRowContext(ctx, s.q(`SELECT digest, lifecycle, reviewed, quarantined, evidence_gen FROM versions WHERE tenant = ? AND name = ? AND version = ?`),
		v.Tenant, v.Name, v.Version).Scan(&stored, &before.Lifecycle, &before.Reviewed, &before.Quarantined, &storedGen); err != nil {
		return res, fmt.Errorf("upsert %s@%s: %w", v.Name, v.Version, err)
	}
	if stored == v.Digest {
		// Compare and swap on the generation: a write whose registry read
		// began before the stored one's is stale and changes nothing (its
		// event is recorded as done). Equal generations are the same
		// ingest again (a retry of one event), which may complete it. The
		// condition is in the UPDATE too, so it holds even without the
		// version_seq lock that serialises these transactions today.
		if storedGen > v.Generation {
			res.Stale = true
			return res, tx.Commit()
		}
		r, err := tx.ExecContext(ctx, s.q(`UPDATE versions SET signed = ?, reviewed = ?, allowed = ?, lifecycle = ?, decision = ?, evidence = ?,
			evidence_digests = ?, visibility = ?, stage = ?, quarantined = ?, ingested_at = ?, seq = ?, evidence_gen = ?
			WHERE tenant = ? AND name = ? AND version = ? AND evidence_gen <= ?`),
			v.Signed, v.Reviewed, v.Allowed, v.Lifecycle, nullJSON(v.Decision), nullJSON(v.Evidence), v.EvidenceDigests, v.Visibility,
			v.Stage, v.Quarantined, v.IngestedAt.UnixNano(), v.Seq, v.Generation, v.Tenant, v.Name, v.Version, v.Generation)
		if err != nil {
			return res, fmt.Errorf("refresh %s@%s: %w", v.Name, v.Version, err)
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return res, fmt.Errorf("refresh %s@%s: %w", v.Name, v.Version, err)
			}
			res.Stale = true
			return res, tx.Commit()
		}
		res.Updated = true
		if err := runWriteHook(ctx, tx, &Write{Version: v, Result: res, Before: &before}); err != nil {
			return res, err
		}
		return res, s.commit(tx)
	}
	res.Moved = true
	a := &Alert{Tenant: v.Tenant, Type: AlertTagMoved, Name: v.Name, Version: v.Version, Repository: v.Repository,
		OldDigest: stored, NewDigest: v.Digest, CreatedAt: v.IngestedAt,
		Message: fmt.Sprintf("tag %s of %s moved from %s to %s; the index keeps %s", v.Version, v.Repository, stored, v.Digest, stored)}
	r, err = tx.ExecContext(ctx, s.q(`INSERT INTO alerts (tenant, type, name, version, repository, old_digest, new_digest, message, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		a.Tenant, a.Type, a.Name, a.Version, a.Repository, a.OldDigest, a.NewDigest, a.Message, a.CreatedAt.UnixNano())
	if err != nil {
		return res, fmt.Errorf("alert %s@%s: %w", v.Name, v.Version, err)
	}
	if n, _ := r.RowsAffected(); n == 1 {
		res.Alert = a
		if err := runWriteHook(ctx, tx, &Write{Version: v, Result: res}); err != nil {
			return res, err
		}
	}
	return res, tx.Commit()
}

// generations takes the next n evidence generations, in increasing order,
// through q (the store's handle or a transaction of it).
func (s *sqlStore) generations(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, n int) ([]int64, error) {
	if n <= 0 {
		return nil, nil
	}
	if s.d.name == "sqlite" {
		// One UPDATE takes the whole block; SQLite has one writer at a
		// time, so blocks never interleave and follow time.
		rows, err := q.QueryContext(ctx, `UPDATE evidence_gen SET n = n + ? RETURNING n`, n)
		if err != nil {
			return nil, fmt.Errorf("take %d evidence generations: %w", n, err)
		}
		defer rows.Close()
		var last int64
		if !rows.Next() {
			return nil, fmt.Errorf("take %d evidence generations: the evidence_gen row is missing (migration 0080)", n)
		}
		if err := rows.Scan(&last); err != nil {
			return nil, fmt.Errorf("take %d evidence generations: %w", n, err)
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = last - int64(n-1-i)
		}
		return out, rows.Close()
	}
	rows, err := q.QueryContext(ctx, `SELECT nextval('evidence_gen') FROM generate_series(1, $1::int) ORDER BY 1`, n)
	if err != nil {
		return nil, fmt.Errorf("take %d evidence generations: %w", n, err)
	}
	defer rows.Close()
	out := make([]int64, 0, n)
	for rows.Next() {
		var g int64
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("take %d evidence generations: %w", n, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take %d evidence generations: %w", n, err)
	}
	return out, nil
}

func (s *sqlStore) Generation(ctx context.Context) (int64, error) {
	gens, err := s.generations(ctx, s.db, 1)
	if err != nil {
		return 0, err
	}
	return gens[0], nil
}

func (s *sqlStore) GenerationsTx(ctx context.Context, tx *sql.Tx, n int) ([]int64, error) {
	return s.generations(ctx, tx, n)
}

// commit commits a version write and counts it for LocalWrites.
func (s *sqlStore) commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	s.writes.Add(1)
	return nil
}

// LocalWrites counts the version writes committed through this handle, so
// that a reader in the same process (the catalog) can tell that its view is
// stale without asking the database. It is no part of Store: the catalog
// asks for it (catalog.LocalWriteCounter) and does without it.
func (s *sqlStore) LocalWrites() int64 { return s.writes.Load() }

// scanVersions reads rows of headerColumns, or of versionColumns when
// whole is set.
func (s *sqlStore) scanVersions(rows *sql.Rows, whole bool) ([]*Version, error) {
	defer rows.Close()
	var out []*Version
	for rows.Next() {
		v := &Version{}
		var keywords string
		var descriptor, decision, evidence sql.NullString
		var ingested int64
		dest := []any{&v.Tenant, &v.Name, &v.Version, &v.Repository, &v.Digest, &v.Kind, &v.Title, &v.Description,
			&keywords, &v.License, &v.Factory, &v.Visibility, &v.Signed, &v.Reviewed, &v.Allowed, &v.Lifecycle, &ingested, &v.Seq, &v.Stage, &v.Quarantined}
		if whole {
			dest = append(dest, &descriptor, &decision, &evidence, &v.EvidenceDigests)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if keywords != "" {
			v.Keywords = strings.Split(keywords, ",")
		}
		v.Descriptor = rawOrNil(descriptor)
		v.Decision = rawOrNil(decision)
		v.Evidence = rawOrNil(evidence)
		v.IngestedAt = time.Unix(0, ingested).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

func rawOrNil(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

func (s *sqlStore) Tagged(ctx context.Context, tenant, repository string) (map[string]Tagged, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT version, digest, evidence_digests FROM versions WHERE tenant = ? AND repository = ?`), tenant, repository)
	if err != nil {
		return nil, fmt.Errorf("read the versions of %s: %w", repository, err)
	}
	defer rows.Close()
	out := map[string]Tagged{}
	for rows.Next() {
		var version string
		var t Tagged
		if err := rows.Scan(&version, &t.Digest, &t.EvidenceDigests); err != nil {
			return nil, fmt.Errorf("read the versions of %s: %w", repository, err)
		}
		out[version] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the versions of %s: %w", repository, err)
	}
	return out, nil
}

func (s *sqlStore) Version(ctx context.Context, tenant, name, version string) (*Version, error) {
	rows, err := s.versionStmt.QueryContext(ctx, tenant, name, version)
	if err != nil {
		return nil, err
	}
	vs, err := s.scanVersions(rows, true)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, ErrNotFound
	}
	return vs[0], nil
}

func (s *sqlStore) Versions(ctx context.Context, tenant, name string) ([]*Version, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+versionColumns+` FROM versions WHERE tenant = ? AND name = ? ORDER BY version`), tenant, name)
	if err != nil {
		return nil, err
	}
	vs, err := s.scanVersions(rows, true)
	SortHighestFirst(vs) // SemVer order is not SQL's text order
	return vs, err
}

func (s *sqlStore) Changes(ctx context.Context, after int64, limit int) ([]*Version, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+headerColumns+` FROM versions WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("changes after %d: %w", after, err)
	}
	return s.scanVersions(rows, false)
}

func (s *sqlStore) Alerts(ctx context.Context, tenant string) ([]*Alert, error) {
	query := `SELECT id, tenant, type, name, version, repository, old_digest, new_digest, message, created_at FROM alerts`
	var args []any
	if tenant != "" {
		query += ` WHERE tenant = ?`
		args = append(args, tenant)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY created_at DESC, id DESC`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Alert
	for rows.Next() {
		a := &Alert{}
		var created int64
		if err := rows.Scan(&a.ID, &a.Tenant, &a.Type, &a.Name, &a.Version, &a.Repository, &a.OldDigest, &a.NewDigest, &a.Message, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqlStore) MarkEvent(ctx context.Context, id string) (bool, error) {
	r, err := s.db.ExecContext(ctx, s.q(`INSERT INTO events (id, seen_at) VALUES (?, ?) `+s.d.insertIgnore), id, time.Now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("mark event %s: %w", id, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

func (s *sqlStore) EventSeen(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM events WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (s *sqlStore) PutToken(ctx context.Context, t *Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.ID = tokenID(t.Hash)
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO tokens (hash, tenant, roles, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)`),
		t.Hash, t.Tenant, strings.Join(t.Roles, ","), t.CreatedAt.UnixNano(), unixOrZero(t.ExpiresAt), unixOrZero(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

func tokenID(hash string) string { return hash[:min(len(hash), TokenIDLength)] }

// unixOrZero stores a time as nanoseconds, the zero time as 0.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

const tokenColumns = `hash, tenant, roles, created_at, expires_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*Token, error) {
	t := &Token{}
	var roles string
	var created, expires, revoked int64
	if err := row.Scan(&t.Hash, &t.Tenant, &roles, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	t.ID = tokenID(t.Hash)
	t.Roles = strings.Split(roles, ",")
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = time.Unix(0, created).UTC(), timeOrZero(expires), timeOrZero(revoked)
	return t, nil
}

func (s *sqlStore) Token(ctx context.Context, hash string) (*Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

func (s *sqlStore) Tokens(ctx context.Context, tenant string) ([]*Token, error) {
	query, args := `SELECT `+tokenColumns+` FROM tokens`, []any{}
	if tenant != "" {
		query += ` WHERE tenant = ?`
		args = append(args, tenant)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY created_at DESC, hash`), args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *sqlStore) RevokeToken(ctx context.Context, id string) (*Token, error) {
	id = strings.ToLower(id)
	if _, err := hex.DecodeString(id); err != nil || len(id) != TokenIDLength {
		return nil, fmt.Errorf("token %q: %w (an ID is %d hex digits, as token list shows it)", id, ErrNotFound, TokenIDLength)
	}
	// Hex digits hold no LIKE wildcard: this matches the hashes the ID
	// begins, and 64 bits make that one.
	prefix := id + "%"
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE tokens SET revoked_at = ? WHERE hash LIKE ? AND revoked_at = 0`), time.Now().UnixNano(), prefix); err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE hash LIKE ?`), prefix))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token %s: %w; token list shows the IDs", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, nil
}

// QueueStore is what the durable ingest queue (index.Queue) needs from a
// store beyond Store. Both SQL stores implement it: the queue keeps its jobs
// in the store's own database, so that a notification batch is queued in
// one transaction and an event's version write records the event in the
// same transaction (WithEvent).
type QueueStore interface {
	// QueueDB is the database handle the store uses and its dialect,
	// "sqlite" or "postgres"; the queue's tables live beside the store's.
	QueueDB() (*sql.DB, string)
	// Quarantine records an alert about an event the index gave up on and
	// marks the event seen, in one transaction, so that a redelivery or a
	// worker that dies half-way can raise the alert only once. It returns
	// the alert when it was new, nil when it was already recorded.
	Quarantine(ctx context.Context, eventID string, a *Alert) (*Alert, error)
	// GenerationsTx is Store.Generation for n events queued in tx, in
	// order: the queue numbers a notification batch as it accepts it, so
	// the events' ingests are ordered as the registry sent them, however
	// late or in whatever order the workers run them.
	GenerationsTx(ctx context.Context, tx *sql.Tx, n int) ([]int64, error)
}

type eventKey struct{}

// WithEvent returns a context under which UpsertVersion records eventID in
// the same transaction as its version write, and writes nothing when the
// id is already recorded. A queue worker that dies after the write but
// before it marks its job done then leaves no second write for the job's
// retry to make: an event's effect commits exactly once.
func WithEvent(ctx context.Context, eventID string) context.Context {
	return context.WithValue(ctx, eventKey{}, eventID)
}

func (s *sqlStore) QueueDB() (*sql.DB, string) { return s.db, s.d.name }

// markEventTx records the WithEvent id of ctx in tx; it reports false when
// the event was already recorded (its write committed before).
func (s *sqlStore) markEventTx(ctx context.Context, tx *sql.Tx) (bool, error) {
	id, _ := ctx.Value(eventKey{}).(string)
	if id == "" {
		return true, nil
	}
	r, err := tx.ExecContext(ctx, s.q(`INSERT INTO events (id, seen_at) VALUES (?, ?) `+s.d.insertIgnore), id, time.Now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("mark event %s: %w", id, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

func (s *sqlStore) Quarantine(ctx context.Context, eventID string, a *Alert) (*Alert, error) {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("quarantine event %s: %w", eventID, err)
	}
	defer tx.Rollback()
	if _, err := s.markEventTx(WithEvent(ctx, eventID), tx); err != nil {
		return nil, fmt.Errorf("quarantine event %s: %w", eventID, err)
	}
	r, err := tx.ExecContext(ctx, s.q(`INSERT INTO alerts (tenant, type, name, version, repository, old_digest, new_digest, message, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		a.Tenant, a.Type, a.Name, a.Version, a.Repository, a.OldDigest, a.NewDigest, a.Message, a.CreatedAt.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("quarantine event %s: alert: %w", eventID, err)
	}
	created, _ := r.RowsAffected()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("quarantine event %s: %w", eventID, err)
	}
	if created != 1 {
		return nil, nil
	}
	return a, nil
}
