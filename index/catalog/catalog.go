// Package catalog is the index's read model: every extension's version
// headers in memory, for search and resolution without a database round
// trip per name, kept current from the store's change feed.
//
// The store stays the only source of truth. A catalog starts empty and
// reads the whole feed on first use; each replica behind a load balancer
// keeps its own. Writes made through the same store handle are seen by the
// next read (read-your-writes in one process); writes made by another
// replica are seen within MaxLag.
package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/index/store"
)

// DefaultMaxLag bounds how stale a replica's catalog may be with respect to
// writes made by other replicas: well inside the one second in which a
// push must be searchable, at four feed reads a second when idle.
const DefaultMaxLag = 250 * time.Millisecond

// feedPage is how many changes one feed read returns.
const feedPage = 1000

// Viewer is who is asking (DESIGN §6): anonymous callers (Tenant "") see
// public extensions; a tenant sees public ones and its own, and internal
// ones too when it is the operator's own tenant.
//
// A quarantined version (one that has not passed its stage's policy,
// DESIGN §6.2) is seen only by its own tenant and by reviewers, and a
// reviewer of another tenant still sees it only where its visibility
// would let that tenant see it once released: the reviewer role lifts the
// quarantine, never tenancy.
type Viewer struct {
	Tenant   string
	Operator bool
	// Reviewer is true for a token with the reviewer role.
	Reviewer bool
}

// CanSee is the visibility rule, the one place it is decided. It is
// decided per version, never by an extension's latest one: when a name has
// versions from a private and a public source, anonymous callers see only
// the public versions.
func (w *Viewer) CanSee(v *store.Version) bool {
	return sees(w.level(v.Tenant), w.reviews(), v)
}

// reviews reports whether w may see quarantined versions of other tenants.
func (w *Viewer) reviews() bool { return w != nil && w.Tenant != "" && w.Reviewer }

// sees is CanSee for a viewer at lvl of v's tenant, a reviewer or not.
func sees(lvl seeLevel, reviewer bool, v *store.Version) bool {
	switch {
	case lvl == seesAll:
		return true
	case v.Lifecycle == store.Blocked:
		// The operator's control list blocks it: listed for no one but
		// its own tenant (seesAll, above), and resolved for no one (its
		// decision denies).
		return false
	case v.Quarantined && !reviewer:
		return false
	}
	return lvl >= levelOf(visibilityOf(v.Visibility))
}

// perspective indexes row.latestFor: a level, and whether a reviewer.
func perspective(lvl seeLevel, reviewer bool) int {
	if reviewer {
		return int(lvl) + int(seesAll) + 1
	}
	return int(lvl)
}

// perspectives is how many (level, reviewer) pairs there are.
const perspectives = 2 * (int(seesAll) + 1)

// level is how much of tenant's versions w may see.
func (w *Viewer) level(tenant string) seeLevel {
	switch {
	case w == nil || w.Tenant != "" && tenant == w.Tenant:
		return seesAll
	case w.Tenant != "" && w.Operator:
		return seesInternal
	}
	return seesPublic
}

// seeLevel orders viewers of one tenant's extension: each level sees what
// the one below sees and more.
type seeLevel uint8

const (
	seesPublic   seeLevel = iota // anonymous callers, other tenants
	seesInternal                 // the operator's tenant: public and internal
	seesAll                      // the extension's own tenant
)

// levelOf is the lowest level that sees a visibility.
func levelOf(v visibility) seeLevel {
	switch v {
	case public:
		return seesPublic
	case internal:
		return seesInternal
	}
	return seesAll
}

// Query selects extensions for search.
type Query struct {
	// Name, when set, selects exactly this publisher/name.
	Name string
	// Text is matched word by word: each word must begin a word of the
	// name, title, description or keywords (case-insensitive).
	Text      string
	Kind      string
	Publisher string
	License   string
	Reviewed  *bool
	// Factory, when set, keeps extensions whose latest version (of those
	// the viewer may see) declares a compatibility range that includes it.
	Factory *semver.Version
	// Viewer restricts results to what that caller may see; nil sees all
	// (the operator's tools, tests).
	Viewer *Viewer
	Limit  int // default 20
	Offset int
}

// Catalog holds, for every tenant's extension, its versions' headers
// (store.Version without descriptor, decision and evidence), highest
// SemVer first. It is safe for concurrent use. The versions it returns are
// shared: callers must not modify them.
type Catalog struct {
	st Feed
	// local is st's count of its own writes, when it keeps one.
	local LocalWriteCounter
	// MaxLag is how old the catalog may be before a read first applies
	// the feed; writes through the same store handle are applied at once.
	MaxLag time.Duration

	syncMu       sync.Mutex   // one feed reader at a time
	syncedWrites atomic.Int64 // localWrites() when the last sync began
	syncedAt     atomic.Int64 // unix nanoseconds when the last sync began

	mu     sync.RWMutex
	seq    int64                   // the last change applied
	sorted []*extension            // by name, then tenant: search order
	byName map[string][]*extension // a name's copies in several tenants
	snap   *snapshot               // what search scans; rebuilt when dirty
	dirty  bool
}

// snapshot is what search scans: one row per extension, in search order,
// held by value with every word in one contiguous arena, so that a search
// reads memory in sequence instead of chasing a pointer per extension. It
// is immutable; a change makes the next search build a new one.
type snapshot struct {
	rows []row
}

// visibility is store's visibility as a number: comparing it reads no
// string that lives elsewhere in memory.
type visibility uint8

const (
	private visibility = iota
	internal
	public
)

func visibilityOf(s string) visibility {
	switch s {
	case store.Public:
		return public
	case store.Internal:
		return internal
	}
	return private // and anything unknown: the narrowest
}

type row struct {
	latest *store.Version // of all versions; what the fields below describe
	// latestFor is the latest version each level of viewer may see (nil:
	// none). Most often all three are latest; when one differs, search
	// matches that version's own fields instead of the row's.
	latestFor [perspectives]*store.Version
	text      string // " word word …", a slice of the snapshot's arena
	sig       uint64 // signature of text's words: see signature
	tenant    string
	kind      string
	license   string
	publisher string
	reviewed  bool
	factory   *semver.Constraints
}

type key struct{ tenant, name string }

// extension is one tenant's extension. versions is replaced, never
// modified, so a reader may keep it after the lock is released.
type extension struct {
	key
	versions []*store.Version // highest SemVer first
}

func (e *extension) latest() *store.Version { return store.Latest(e.versions) }

// visibleAt returns the versions a level of viewer (a reviewer or not)
// may see, highest first: all of them (the same slice) when it may see all.
func (e *extension) visibleAt(lvl seeLevel, reviewer bool) []*store.Version {
	n := 0
	for _, v := range e.versions {
		if sees(lvl, reviewer, v) {
			n++
		}
	}
	if n == len(e.versions) {
		return e.versions
	}
	out := make([]*store.Version, 0, n)
	for _, v := range e.versions {
		if sees(lvl, reviewer, v) {
			out = append(out, v)
		}
	}
	return out
}

// Feed is what the catalog reads of a store: the versions written after a
// sequence number (store.Store.Changes).
type Feed interface {
	Changes(ctx context.Context, after int64, limit int) ([]*store.Version, error)
}

// LocalWriteCounter is a Feed that also counts the writes committed through
// it (the SQL stores do): the catalog then syncs before a read that follows
// a write of this process, instead of after MaxLag. It is the catalog's
// concern alone, so it is asked for here and is no part of store.Store.
type LocalWriteCounter interface {
	LocalWrites() int64
}

// New returns an empty catalog of st; the first read fills it.
func New(st Feed) *Catalog {
	c := &Catalog{st: st, MaxLag: DefaultMaxLag, byName: map[string][]*extension{}}
	c.local, _ = st.(LocalWriteCounter)
	return c
}

// localWrites is the feed's count of its own writes; 0 when it keeps none.
func (c *Catalog) localWrites() int64 {
	if c.local == nil {
		return 0
	}
	return c.local.LocalWrites()
}

func (c *Catalog) syncLocked(ctx context.Context) error {
	writes, now := c.localWrites(), time.Now()
	for {
		c.mu.RLock()
		after := c.seq
		c.mu.RUnlock()
		vs, err := c.st.Changes(ctx, after, feedPage)
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		c.apply(vs)
		if len(vs) < feedPage {
			break
		}
	}
	c.syncedWrites.Store(writes)
	c.syncedAt.Store(now.UnixNano())
	return nil
}

// fresh syncs when a write went through this process's store handle since
// the last sync (the caller waits: it may be reading its own write), or
// when the last sync is older than MaxLag (one caller syncs, the others go
// on with what is there rather than queue behind a database round trip).
func (c *Catalog) fresh(ctx context.Context) error {
	if !c.stale() {
		return nil
	}
	// Only a local write, or a catalog never filled, makes the reader wait.
	if c.localWrites() == c.syncedWrites.Load() && c.syncedAt.Load() != 0 {
		if !c.syncMu.TryLock() {
			return nil
		}
	} else {
		c.syncMu.Lock()
	}
	defer c.syncMu.Unlock()
	if !c.stale() { // another reader synced while this one waited
		return nil
	}
	return c.syncLocked(ctx)
}

func (c *Catalog) stale() bool {
	return c.localWrites() != c.syncedWrites.Load() ||
		time.Since(time.Unix(0, c.syncedAt.Load())) > c.MaxLag
}

// apply adds a batch of changes, in seq order.
func (c *Catalog) apply(vs []*store.Version) {
	if len(vs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range vs {
		c.seq = max(c.seq, v.Seq)
		copies := c.byName[v.Name]
		var e *extension
		if i := slices.IndexFunc(copies, func(x *extension) bool { return x.tenant == v.Tenant }); i >= 0 {
			e = copies[i]
		} else {
			e = &extension{key: key{v.Tenant, v.Name}}
			i, _ := slices.BinarySearchFunc(c.sorted, e, compareExt)
			c.sorted = slices.Insert(c.sorted, i, e)
			copies = append(copies, e)
			slices.SortFunc(copies, compareExt)
			c.byName[v.Name] = copies
		}
		vers := make([]*store.Version, 0, len(e.versions)+1)
		for _, old := range e.versions {
			if old.Version != v.Version {
				vers = append(vers, old)
			}
		}
		vers = append(vers, v)
		store.SortHighestFirst(vers)
		e.versions = vers
	}
	c.dirty = true
}

// view returns the current snapshot, building it if changes were applied
// since the last one.
func (c *Catalog) view() *snapshot {
	c.mu.RLock()
	s, dirty := c.snap, c.dirty
	c.mu.RUnlock()
	if !dirty && s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirty || c.snap == nil {
		c.snap, c.dirty = c.build(), false
	}
	return c.snap
}

// build makes a snapshot of the extensions (under c.mu).
func (c *Catalog) build() *snapshot {
	ws := make([][]string, len(c.sorted))
	var arena strings.Builder
	ends := make([]int, len(c.sorted)) // where each row's text ends in the arena
	for i, e := range c.sorted {
		l := e.latest()
		ws[i] = words(l.Name, l.Title, l.Description, strings.Join(l.Keywords, " "))
		for _, w := range ws[i] {
			arena.WriteByte(' ')
			arena.WriteString(w)
		}
		ends[i] = arena.Len()
	}
	all := arena.String()
	s := &snapshot{rows: make([]row, len(c.sorted))}
	start := 0
	for i, e := range c.sorted {
		l := e.latest()
		factory, _ := semver.NewConstraint(l.Factory) // nil when unparsable: matches no Factory
		s.rows[i] = row{latest: l, text: all[start:ends[i]], sig: signature(ws[i]), tenant: l.Tenant, kind: l.Kind, license: l.License,
			publisher: l.Publisher(), reviewed: l.Reviewed, factory: factory}
		for lvl := seesPublic; lvl <= seesAll; lvl++ {
			for _, reviewer := range []bool{false, true} {
				s.rows[i].latestFor[perspective(lvl, reviewer)] = store.Latest(e.visibleAt(lvl, reviewer))
			}
		}
		start = ends[i]
	}
	return s
}

func compareExt(a, b *extension) int {
	if n := strings.Compare(a.name, b.name); n != 0 {
		return n
	}
	return strings.Compare(a.tenant, b.tenant)
}

// words lowercases and splits on everything but letters and digits, so
// "acme/crm-sync" holds the words acme, crm and sync.
func words(s ...string) []string {
	var out []string
	for _, x := range s {
		out = append(out, strings.FieldsFunc(strings.ToLower(x), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})...)
	}
	return out
}

// Search returns the latest version of each matching extension that the
// viewer may see (versions it may not see are not matched, counted or
// returned), ordered by name then tenant, and how many match in all.
func (c *Catalog) Search(ctx context.Context, q Query) ([]*store.Version, int, error) {
	if err := c.fresh(ctx); err != nil {
		return nil, 0, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	want := words(q.Text)
	wantSig := signature(want)
	rows := c.view().rows
	if q.Name != "" { // names are sorted: the copies of one are adjacent
		i, _ := slices.BinarySearchFunc(rows, q.Name, func(r row, name string) int { return strings.Compare(r.latest.Name, name) })
		j := i
		for j < len(rows) && rows[j].latest.Name == q.Name {
			j++
		}
		rows = rows[i:j]
	}
	var out []*store.Version
	total := 0
	for i := range rows {
		r := &rows[i]
		v := r.latest
		if q.Viewer != nil {
			v = r.latestFor[perspective(q.Viewer.level(r.tenant), q.Viewer.reviews())]
		}
		if v == nil || !q.matches(r, v, want, wantSig) {
			continue
		}
		if total >= q.Offset && len(out) < limit {
			out = append(out, v)
		}
		total++
	}
	return out, total, nil
}

// matches reports whether v, the version of r the viewer sees as latest,
// matches. When v is r.latest the row's prepared fields are used; another
// version (the viewer may not see the latest) is matched field by field.
func (q *Query) matches(r *row, v *store.Version, want []string, wantSig uint64) bool {
	if v != r.latest {
		factory, _ := semver.NewConstraint(v.Factory)
		ws := words(v.Name, v.Title, v.Description, strings.Join(v.Keywords, " "))
		var text strings.Builder
		for _, w := range ws {
			text.WriteByte(' ')
			text.WriteString(w)
		}
		r = &row{latest: v, text: text.String(), sig: signature(ws), tenant: v.Tenant, kind: v.Kind, license: v.License,
			publisher: v.Publisher(), reviewed: v.Reviewed, factory: factory}
	}
	if q.Kind != "" && r.kind != q.Kind ||
		q.License != "" && r.license != q.License ||
		q.Reviewed != nil && r.reviewed != *q.Reviewed ||
		q.Publisher != "" && r.publisher != q.Publisher ||
		q.Factory != nil && (r.factory == nil || !r.factory.Check(q.Factory)) {
		return false
	}
	return textMatches(r.text, r.sig, want, wantSig)
}

// textMatches reports whether every word of want begins a word of text,
// whose signature is sig; wantSig is want's. The signature rules out most
// rows without reading their text.
func textMatches(text string, sig uint64, want []string, wantSig uint64) bool {
	if sig&wantSig != wantSig {
		return false
	}
	for _, w := range want {
		if !beginsWord(text, w) {
			return false
		}
	}
	return true
}

// signature sets, for each word of two bytes or more, one of 64 bits
// chosen by its first two bytes. A word that begins another shares its
// first two bytes, so a row whose signature lacks a bit of the query's
// cannot match (a one-byte word sets no bit and rules nothing out). With
// a dozen words a row sets about a fifth of the bits: four rows in five
// are ruled out per query word.
func signature(ws []string) uint64 {
	var s uint64
	for _, w := range ws {
		if len(w) >= 2 {
			s |= 1 << ((uint(w[0])*31 + uint(w[1])) % 64)
		}
	}
	return s
}

// beginsWord reports whether w begins a word of text (" word word …").
// It looks for w itself, not " "+w: a space would be the byte searched
// for first, and text is full of them.
func beginsWord(text, w string) bool {
	for i := 0; i < len(text); {
		j := strings.Index(text[i:], w)
		if j < 0 {
			return false
		}
		if at := i + j; text[at-1] == ' ' { // text starts with a space: at ≥ 1
			return true
		}
		i += j + 1
	}
	return false
}

// Lookup finds name as a viewer sees it, its own tenant's copy first, and
// returns the versions of that copy the viewer may see, highest SemVer
// first; none when it may see no version of any copy (another tenant's
// private extension is not there).
func (c *Catalog) Lookup(ctx context.Context, viewer *Viewer, name string) ([]*store.Version, error) {
	if err := c.fresh(ctx); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var found []*store.Version
	for _, e := range c.byName[name] {
		vs := e.visibleAt(viewer.level(e.tenant), viewer.reviews())
		if len(vs) == 0 {
			continue
		}
		if e.tenant == viewer.Tenant {
			return vs, nil
		}
		if found == nil {
			found = vs
		}
	}
	return found, nil
}

// Select returns every version the viewer may see for which keep returns
// true, across all extensions, in no particular order: the review queue
// reads the quarantined versions with it, from memory.
func (c *Catalog) Select(ctx context.Context, viewer *Viewer, keep func(*store.Version) bool) ([]*store.Version, error) {
	if err := c.fresh(ctx); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*store.Version
	for _, e := range c.sorted {
		lvl, reviewer := viewer.level(e.tenant), viewer.reviews()
		for _, v := range e.versions {
			if keep(v) && sees(lvl, reviewer, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}
