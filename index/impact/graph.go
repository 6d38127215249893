package impact

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/index/store"
)

// ErrBadQuery is a query that names nothing to start from, or more than
// one kind of thing.
var ErrBadQuery = errors.New("impact query")

// Version names one version of the graph: its owner tenant, name, version
// and manifest digest.
type Version struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// Query says where the blast starts: a name and version, a manifest
// digest, or a publisher key's fingerprint (every version it signed).
// Exactly one of the three must be given.
type Query struct {
	Name    string
	Version string
	Digest  string
	Key     string
	// Tenant, when set, starts the walk only from the versions q names
	// that this tenant owns (a publisher asking about its own).
	Tenant string
}

// Node is a version in an answer.
type Node struct {
	Version
	Visibility string `json:"visibility"`
	Lifecycle  string `json:"lifecycle,omitempty"`
	// Quarantined: the version has not passed its stage's policy, and
	// only its own tenant and reviewers may see it (the caller filters).
	Quarantined bool `json:"quarantined,omitempty"`
	// Depth is how many dependency steps it is from a target (0: a target).
	Depth int `json:"depth"`
	// Via is the version it depends on that brought it in, and Constraint
	// the constraint of its descriptor that admits Via (not for targets).
	Via        *Version `json:"via,omitempty"`
	Constraint string   `json:"constraint,omitempty"`
}

// Answer is what a query found: the targets it names and their reverse
// dependency closure, each by depth then name and version.
type Answer struct {
	Targets    []Node
	Dependents []Node
}

// Versions are the targets and the dependents, as Usage takes them.
func (a *Answer) Versions() []Version {
	out := make([]Version, 0, len(a.Targets)+len(a.Dependents))
	for _, n := range a.Targets {
		out = append(out, n.Version)
	}
	for _, n := range a.Dependents {
		out = append(out, n.Version)
	}
	return out
}

// Graph is the index's versions linked by dependency and signer, kept in
// memory and current from a store.LinkFeed. It is safe for concurrent use.
type Graph struct {
	feed store.LinkFeed

	syncMu sync.Mutex // one feed reader at a time
	mu     sync.RWMutex
	seq    int64
	nodes  map[nodeKey]*node
	all    []*node // by id
	// unranked is set when nodes were added since ranks were assigned.
	unranked bool
	// dependents lists, by dependency name, the versions that declare a
	// dependency on it, for the edges of versions that arrive later.
	dependents map[string][]*node
	byName     map[string][]*node
	byDigest   map[string][]*node
	bySigner   map[string][]*node
	// constraints shares parsed constraints: most dependents of a name
	// write the same few.
	constraints map[string]*semver.Constraints
}

type nodeKey struct{ tenant, name, version string }

type node struct {
	Version
	visibility, lifecycle string
	quarantined           bool
	semver                *semver.Version // nil: not SemVer, admitted by no constraint
	deps                  []dep
	signers               []string
	// rdeps are the versions whose constraints admit this one: the
	// graph's edges, backwards, resolved to versions as they arrive.
	rdeps []edge
	id    int // index in Graph.all
	// rank is the node's place in answer order (name, then SemVer highest
	// first, then tenant), kept by Sync, so that sorting an answer of tens
	// of thousands compares integers.
	rank int
}

// edge is a dependent and the constraint of its by which it depends.
type edge struct {
	n          *node
	constraint string
}

type dep struct {
	name       string
	constraint string
	parsed     *semver.Constraints // nil: unparsable, admits nothing
}

// feedPage is how many changes one feed read returns.
const feedPage = 5000

// New returns an empty graph of feed; the first query fills it.
func New(feed store.LinkFeed) *Graph {
	return &Graph{feed: feed, nodes: map[nodeKey]*node{}, dependents: map[string][]*node{}, byName: map[string][]*node{},
		byDigest: map[string][]*node{}, bySigner: map[string][]*node{}, constraints: map[string]*semver.Constraints{}}
}

// Sync applies the changes written since the last sync. Queries call it;
// a server may call it at start to fill the graph before the first query.
func (g *Graph) Sync(ctx context.Context) error {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	for {
		g.mu.RLock()
		after := g.seq
		g.mu.RUnlock()
		ls, err := g.feed.LinkChanges(ctx, after, feedPage)
		if err != nil {
			return fmt.Errorf("impact graph: %w", err)
		}
		g.apply(ls)
		if len(ls) < feedPage {
			g.rank()
			return nil
		}
	}
}

// apply adds or refreshes versions, in seq order. A version's
// dependencies never change (a version tag keeps its first digest, and its
// descriptor with it), but its signers, lifecycle and visibility may on a
// refresh, which updates them in place.
func (g *Graph) apply(ls []*store.Links) {
	if len(ls) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range ls {
		g.seq = max(g.seq, l.Seq)
		k := nodeKey{l.Tenant, l.Name, l.Version}
		if old, ok := g.nodes[k]; ok {
			g.refresh(old, l)
			continue
		}
		n := &node{Version: Version{Tenant: l.Tenant, Name: l.Name, Version: l.Version, Digest: l.Digest},
			visibility: l.Visibility, lifecycle: l.Lifecycle, quarantined: l.Quarantined, signers: slices.Clone(l.Signers), id: len(g.all)}
		g.all = append(g.all, n)
		n.semver, _ = semver.StrictNewVersion(l.Version)
		for _, d := range l.Dependencies {
			n.deps = append(n.deps, dep{name: d.Name, constraint: d.Version, parsed: g.constraint(d.Version)})
		}
		g.nodes[k] = n
		// The edges, both ways: the versions n's constraints admit gain n
		// as a dependent, and n gains the dependents whose constraints
		// admit it. Versions arrive in any order.
		for _, name := range n.depNames() {
			for _, v := range g.byName[name] {
				if c, ok := n.admits(v); ok {
					v.rdeps = append(v.rdeps, edge{n, c})
				}
			}
			g.dependents[name] = append(g.dependents[name], n)
		}
		for _, d := range g.dependents[n.Name] {
			if c, ok := d.admits(n); ok {
				n.rdeps = append(n.rdeps, edge{d, c})
			}
		}
		g.byName[n.Name] = append(g.byName[n.Name], n)
		g.unranked = true
		g.byDigest[n.Digest] = append(g.byDigest[n.Digest], n)
		for _, s := range n.signers {
			g.bySigner[s] = append(g.bySigner[s], n)
		}
	}
}

// rank assigns every node its place in answer order, when nodes were added.
func (g *Graph) rank() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.unranked {
		return
	}
	ordered := slices.Clone(g.all)
	slices.SortFunc(ordered, func(a, b *node) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := compareSemver(b, a); c != 0 {
			return c
		}
		return strings.Compare(a.Tenant, b.Tenant)
	})
	for i, n := range ordered {
		n.rank = i
	}
	g.unranked = false
}

// refresh updates what a re-ingest may change of n.
func (g *Graph) refresh(n *node, l *store.Links) {
	for _, s := range n.signers {
		g.bySigner[s] = slices.DeleteFunc(g.bySigner[s], func(x *node) bool { return x == n })
		if len(g.bySigner[s]) == 0 {
			delete(g.bySigner, s)
		}
	}
	n.visibility, n.lifecycle, n.quarantined, n.signers = l.Visibility, l.Lifecycle, l.Quarantined, slices.Clone(l.Signers)
	for _, s := range n.signers {
		g.bySigner[s] = append(g.bySigner[s], n)
	}
}

// depNames are the distinct names n depends on.
func (n *node) depNames() []string {
	var names []string
	for _, d := range n.deps {
		if !slices.Contains(names, d.name) {
			names = append(names, d.name)
		}
	}
	return names
}

func (g *Graph) constraint(s string) *semver.Constraints {
	if c, ok := g.constraints[s]; ok {
		return c
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		c = nil
	}
	g.constraints[s] = c
	return c
}

// admits reports whether one of n's dependencies on target's name admits
// target's version, and which constraint does.
func (n *node) admits(target *node) (string, bool) {
	if target.semver == nil {
		return "", false
	}
	for _, d := range n.deps {
		if d.name == target.Name && d.parsed != nil && d.parsed.Check(target.semver) {
			return d.constraint, true
		}
	}
	return "", false
}

// Impact syncs the graph and answers q: the versions q names, and every
// version that depends on one of them, directly or through others, by a
// constraint that admits the version it depends on. Names are global (one
// owner per name, DESIGN §6.1), so a dependent in any tenant counts; the
// caller filters what a viewer may see.
func (g *Graph) Impact(ctx context.Context, q Query) (*Answer, error) {
	if err := g.Sync(ctx); err != nil {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	targets, err := g.targets(q)
	if err != nil {
		return nil, err
	}
	type reached struct {
		n          *node
		depth      int
		via        *node
		constraint string
	}
	seen := make([]bool, len(g.all))
	var queue []reached
	for _, t := range targets {
		if !seen[t.id] {
			seen[t.id] = true
			queue = append(queue, reached{n: t})
		}
	}
	// Breadth first over the admitted edges, so that each dependent is
	// reached by a shortest path.
	for i := 0; i < len(queue); i++ {
		r := queue[i]
		for _, e := range r.n.rdeps {
			if !seen[e.n.id] {
				seen[e.n.id] = true
				queue = append(queue, reached{n: e.n, depth: r.depth + 1, via: r.n, constraint: e.constraint})
			}
		}
	}
	// Answer order is by depth, then rank: a pass over the ranks puts
	// each depth's versions in order without a comparison sort.
	at := make([]int32, len(g.all)) // by rank: 1 + the version's place in queue, 0 if not reached
	perDepth := []int{}
	for i, r := range queue {
		at[r.n.rank] = int32(i + 1)
		for len(perDepth) <= r.depth {
			perDepth = append(perDepth, 0)
		}
		perDepth[r.depth]++
	}
	next := make([]int, len(perDepth)) // where each depth's next version goes
	for d := 1; d < len(perDepth); d++ {
		next[d] = next[d-1] + perDepth[d-1]
	}
	ordered := make([]reached, len(queue))
	for _, i := range at {
		if i != 0 {
			r := queue[i-1]
			ordered[next[r.depth]] = r
			next[r.depth]++
		}
	}
	queue = ordered
	// One allocation for the whole answer: a closure of tens of thousands
	// of versions is otherwise mostly garbage collection.
	all := make([]Node, len(queue))
	nt := 0
	for i, r := range queue {
		all[i] = Node{Version: r.n.Version, Visibility: r.n.visibility, Lifecycle: r.n.lifecycle, Quarantined: r.n.quarantined, Depth: r.depth}
		if r.via == nil {
			nt++
			continue
		}
		all[i].Via = &r.via.Version // never modified once the node is made
		all[i].Constraint = r.constraint
	}
	return &Answer{Targets: all[:nt:nt], Dependents: all[nt:]}, nil
}

// compareSemver orders by SemVer precedence, versions that are not SemVer
// below (store.CompareVersions, without parsing again).
func compareSemver(a, b *node) int {
	switch {
	case a.semver == nil && b.semver == nil:
		return strings.Compare(a.Version.Version, b.Version.Version)
	case a.semver == nil:
		return -1
	case b.semver == nil:
		return 1
	}
	return a.semver.Compare(b.semver)
}

// targets are the versions q names (under g.mu).
func (g *Graph) targets(q Query) ([]*node, error) {
	given := 0
	for _, s := range []string{q.Name, q.Digest, q.Key} {
		if s != "" {
			given++
		}
	}
	switch {
	case given != 1:
		return nil, fmt.Errorf("%w: give one of name (with version), digest or key", ErrBadQuery)
	case q.Name != "" && q.Version == "":
		return nil, fmt.Errorf("%w: name %s needs a version", ErrBadQuery, q.Name)
	case q.Name == "" && q.Version != "":
		return nil, fmt.Errorf("%w: version %s needs a name", ErrBadQuery, q.Version)
	case q.Digest != "" && !strings.Contains(q.Digest, ":"):
		return nil, fmt.Errorf("%w: digest %q: want ALGORITHM:HEX (sha256:…)", ErrBadQuery, q.Digest)
	}
	var out []*node
	switch {
	case q.Name != "":
		for _, n := range g.byName[q.Name] {
			if n.Version.Version == q.Version {
				out = append(out, n)
			}
		}
	case q.Digest != "":
		out = g.byDigest[q.Digest]
	default:
		out = g.bySigner[q.Key]
	}
	if q.Tenant != "" {
		out = slices.DeleteFunc(slices.Clone(out), func(n *node) bool { return n.Tenant != q.Tenant })
	}
	return out, nil
}

// Usage says which tenants used (pulled or installed) versions. The
// metering store satisfies it once usage events are recorded (issue 12);
// until then GraphTenants stands in.
type Usage interface {
	// TenantsUsing returns, for each tenant that used any of vs, the ones
	// it used (as given in vs).
	TenantsUsing(ctx context.Context, vs []Version) (map[string][]Version, error)
}

// GraphTenants is Usage from the dependency graph alone: a version's
// tenant is the one that owns it (published it into the index), the only
// tenant the graph knows to hold it.
type GraphTenants struct{}

// TenantsUsing maps each version to its owner tenant.
func (GraphTenants) TenantsUsing(_ context.Context, vs []Version) (map[string][]Version, error) {
	out := map[string][]Version{}
	for _, v := range vs {
		out[v.Tenant] = append(out[v.Tenant], v)
	}
	return out, nil
}
