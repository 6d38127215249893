package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
)

// Errors a Guard refuses a list with, matched with errors.Is.
var (
	// ErrRollback: the registry serves a list with a lower sequence than
	// one already seen, or another list under a sequence already seen.
	ErrRollback = errors.New("control list rolled back")
	// ErrExpired: the list's expires is past.
	ErrExpired = errors.New("control list expired")
	// ErrStale: no list could be refreshed for longer than maxAge.
	ErrStale = errors.New("control list too old")
)

// DefaultMaxAge is how long a list that cannot be refreshed still counts
// when the policy does not say.
const DefaultMaxAge = 24 * time.Hour

// DefaultRefresh is how often a long-running Guard asks the registry again.
const DefaultRefresh = time.Minute

// Config is a policy's controlList: where the list is and who signs it.
type Config struct {
	Ref  string
	Keys []*signing.Key
	// MaxAge is how long the last list fetched still counts when it cannot
	// be refreshed; 0 means DefaultMaxAge.
	MaxAge time.Duration
}

// Options say how a Guard reaches the registry and remembers lists.
type Options struct {
	Remote remote.Options
	// State remembers the newest list accepted, so that a rollback is
	// refused across restarts; nil keeps it in memory (NewMemoryState).
	State State
	// Refresh is how long a fetched list is used before the registry is
	// asked again; 0 means DefaultRefresh. A CLI process asks once.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Record is the newest list a consumer accepted from one reference.
type Record struct {
	Ref      string `json:"ref"`
	Sequence int64  `json:"sequence"`
	Digest   string `json:"digest"`
	// FetchedAt is when it was last fetched and verified (or found
	// unchanged) from the registry: maxAge counts from here.
	FetchedAt time.Time `json:"fetchedAt"`
	// List is the list's JSON as it was signed.
	List json.RawMessage `json:"list"`
}

// State keeps Records: the highest sequence seen must outlive the process
// that saw it, or a registry could serve an old list to every new one.
type State interface {
	Load(ref string) (*Record, error) // nil, nil when there is none
	Save(r *Record) error
}

// Current is the list in force.
type Current struct {
	List      *List
	Ref       string
	Digest    string
	FetchedAt time.Time
}

// Guard holds one policy's control list for its consumer: Current is
// safe for concurrent use and costs a lock and a clock read when the list
// is fresh.
type Guard struct {
	cfg Config
	o   Options

	mu          sync.Mutex
	rec         *Record
	cur         *Current
	loaded      bool
	lastAttempt time.Time
	lastErr     error
}

// NewGuard returns a Guard for cfg; nothing is fetched until Current or
// Refresh.
func NewGuard(cfg Config, o Options) *Guard {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.State == nil {
		o.State = NewMemoryState()
	}
	return &Guard{cfg: cfg, o: o}
}

// Config is what the guard was made for.
func (g *Guard) Config() Config { return g.cfg }

// Current returns the list in force, fetching it first when it is due.
// It fails closed: with no list accepted yet, an expired list, or a list
// last refreshed longer than maxAge ago, it returns an error that says why
// (matching ErrExpired or ErrStale) and what the last refresh met.
func (g *Guard) Current(ctx context.Context) (*Current, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.Now()
	if !g.loaded || g.cur == nil || now.Sub(g.lastAttempt) >= g.o.Refresh {
		g.refreshLocked(ctx, now)
	}
	return g.inForce(now)
}

// Refresh asks the registry for the list now and reports whether the
// list in force changed (a long-running consumer then re-derives what it
// decided). A list refused (forged, rolled back, expired) leaves the one
// in force, and is the error.
func (g *Guard) Refresh(ctx context.Context) (changed bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	before := ""
	if g.rec != nil {
		before = g.rec.Digest
	}
	g.refreshLocked(ctx, g.o.Now())
	after := ""
	if g.rec != nil {
		after = g.rec.Digest
	}
	return after != before, g.lastErr
}

func (g *Guard) refreshLocked(ctx context.Context, now time.Time) {
	// The state is read before every fetch, not only the first: another
	// process sharing it (an index replica) may have accepted a newer list
	// since, and an older one must then be refused here too.
	rec, err := g.o.State.Load(g.cfg.Ref)
	g.lastAttempt = now
	if err != nil {
		// Without the highest sequence seen, a rollback would go
		// unnoticed: nothing is fetched, the list in force (if any) counts
		// as when the registry is down, and the state is read again next
		// time.
		g.lastErr = fmt.Errorf("read the control list state of %s, so no list is accepted until it can be: %w", g.cfg.Ref, err)
		return
	}
	g.loaded = true
	if rec != nil && (g.rec == nil || rec.Sequence > g.rec.Sequence) && !g.accept(rec) {
		return // a saved list that does not parse: fail closed, as above
	}
	g.lastErr = g.fetch(ctx, now)
}

// fetch reads and checks the list at the configured reference and, if it
// may replace the one in force, makes it so and saves it.
func (g *Guard) fetch(ctx context.Context, now time.Time) error {
	f, err := Fetch(ctx, g.cfg.Ref, g.cfg.Keys, g.o.Remote)
	if err != nil {
		return err
	}
	l := f.List
	if g.rec != nil {
		switch {
		case l.Sequence < g.rec.Sequence:
			return fmt.Errorf("%w: %s serves sequence %d (%s), lower than sequence %d (%s) already accepted; the registry or someone with push access is serving an old list, so the newer one stays in force",
				ErrRollback, g.cfg.Ref, l.Sequence, f.Digest, g.rec.Sequence, g.rec.Digest)
		case l.Sequence == g.rec.Sequence && f.Digest != g.rec.Digest:
			return fmt.Errorf("%w: %s serves a list (%s) with sequence %d, the sequence of another list already accepted (%s); every new list needs a higher sequence",
				ErrRollback, g.cfg.Ref, f.Digest, l.Sequence, g.rec.Digest)
		}
	}
	if !now.Before(l.Expires) {
		return fmt.Errorf("%w: %s (sequence %d) expired at %s; the operator must publish a new one", ErrExpired, g.cfg.Ref, l.Sequence, l.Expires.UTC().Format(time.RFC3339))
	}
	rec := &Record{Ref: g.cfg.Ref, Sequence: l.Sequence, Digest: f.Digest, FetchedAt: now, List: f.raw}
	g.accept(rec)
	if err := g.o.State.Save(rec); err != nil {
		return fmt.Errorf("remember control list %s: %w", g.cfg.Ref, err)
	}
	return nil
}

// accept makes rec the list in force; a list that does not parse is
// refused, with the reason as the last error.
func (g *Guard) accept(rec *Record) bool {
	l, err := Parse(rec.List, "saved control list "+rec.Digest)
	if err != nil {
		g.lastErr = err
		return false
	}
	g.rec = rec
	g.cur = &Current{List: l, Ref: rec.Ref, Digest: rec.Digest, FetchedAt: rec.FetchedAt}
	return true
}

func (g *Guard) inForce(now time.Time) (*Current, error) {
	also := ""
	if g.lastErr != nil {
		also = "; the last refresh failed: " + g.lastErr.Error()
	}
	switch {
	case g.cur == nil:
		if g.lastErr != nil {
			return nil, fmt.Errorf("control list %s could not be read, so nothing is allowed (fail closed): %w", g.cfg.Ref, g.lastErr)
		}
		return nil, fmt.Errorf("control list %s could not be read, so nothing is allowed (fail closed)", g.cfg.Ref)
	case !now.Before(g.cur.List.Expires):
		return nil, fmt.Errorf("%w: %s (sequence %d) expired at %s, so nothing is allowed (fail closed)%s",
			ErrExpired, g.cfg.Ref, g.cur.List.Sequence, g.cur.List.Expires.UTC().Format(time.RFC3339), also)
	case now.Sub(g.cur.FetchedAt) > g.cfg.MaxAge:
		return nil, fmt.Errorf("%w: %s was last refreshed at %s, more than maxAge %s ago, so nothing is allowed (fail closed)%s",
			ErrStale, g.cfg.Ref, g.cur.FetchedAt.UTC().Format(time.RFC3339), g.cfg.MaxAge, also)
	}
	return g.cur, nil
}

// MemoryState keeps Records for the life of the process: the index's and a
// long-running Factory's default.
type MemoryState struct {
	mu   sync.Mutex
	recs map[string]*Record
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState { return &MemoryState{recs: map[string]*Record{}} }

// Load returns the record saved for ref, or nil.
func (m *MemoryState) Load(ref string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[ref], nil
}

// Save keeps r, unless a record with a higher sequence is kept already
// (two guards sharing the state).
func (m *MemoryState) Save(r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.recs[r.Ref]; cur != nil && cur.Sequence > r.Sequence {
		return nil
	}
	m.recs[r.Ref] = r
	return nil
}

// DiskState keeps one Record per reference as a JSON file in Dir: the
// CLI's, in the user cache directory (DefaultDir), so that every run
// refuses a list older than one an earlier run accepted.
type DiskState struct{ Dir string }

// DefaultDir is where the CLI keeps control lists: $MKT_CACHE_DIR/control
// when set, else the user cache directory's mkt/control.
func DefaultDir() (string, error) {
	if d := os.Getenv("MKT_CACHE_DIR"); d != "" {
		return filepath.Join(d, "control"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the control list (set MKT_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "mkt", "control"), nil
}

func (d DiskState) path(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(d.Dir, hex.EncodeToString(sum[:16])+".json")
}

// Load reads the record of ref; a missing file is no record.
func (d DiskState) Load(ref string) (*Record, error) {
	b, err := os.ReadFile(d.path(ref))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved control list: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.Ref != ref {
		return nil, fmt.Errorf("saved control list %s is damaged; remove it to start again (a rollback of the list would then go unnoticed once)", d.path(ref))
	}
	return &r, nil
}

// Save writes r atomically, unless the file holds a higher sequence (a
// concurrent run saw a newer list).
func (d DiskState) Save(r *Record) error {
	if cur, err := d.Load(r.Ref); err == nil && cur != nil && cur.Sequence > r.Sequence {
		return nil
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Dir, ".control-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), d.path(r.Ref))
}

// Usable reports, without asking the registry, whether the list in force
// still counts now: nil, or why every decision fails closed (none read,
// expired, or not refreshed for longer than maxAge). A long-running
// consumer that stored decisions re-derives them when this changes.
func (g *Guard) Usable() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.inForce(g.o.Now())
	return err
}

// InForce is the digest of the list in force, "" when none is.
func (g *Guard) InForce() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rec == nil {
		return ""
	}
	return g.rec.Digest
}
