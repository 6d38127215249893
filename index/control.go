package index

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	lru "github.com/hashicorp/golang-lru/v2"
)

// The index honours the operator's control list (package control) through
// its policies' controlList, like every other consumer: each policy gets a
// guard kept in memory, sharing one State, so that the highest sequence
// seen survives a policy reload; ingests decide with it (the content
// digest read once per layer), a blocked version is stored with lifecycle
// store.Blocked (hidden from the catalog, refused by resolution), and
// WatchPolicy refreshes the list on a timer and re-derives every stored
// decision through Reevaluate when the list in force changes. A version
// newly blocked calls Ingester.OnControlBlocked.

// contentsCached bounds the layer → content digest cache.
const contentsCached = 16384

// contentCache remembers content digests by layer digest: a digest names
// fixed content, and a re-evaluation after a new control list would
// otherwise read every layer again.
type contentCache struct {
	once sync.Once
	c    *lru.Cache[string, string]
}

func (cc *contentCache) get() *lru.Cache[string, string] {
	cc.once.Do(func() { cc.c, _ = lru.New[string, string](contentsCached) })
	return cc.c
}

// contentDigest is the content digest of a's layer, streamed from the
// source's registry once and then remembered.
func (in *Ingester) contentDigest(ctx context.Context, conn *sourceConn, repoName string, a *artifact.Artifact) (string, error) {
	layer := a.Layer().Digest.String()
	cache := in.contents.get()
	if d, ok := cache.Get(layer); ok {
		return d, nil
	}
	repo, err := artifact.NewRepository(repoName+"@"+a.Descriptor.Digest.String(), conn.remote)
	if err != nil {
		return "", err
	}
	d, err := artifact.ContentDigestOf(ctx, repo, a, artifact.Limits{})
	if err != nil {
		return "", err
	}
	cache.Add(layer, d)
	return d, nil
}

// controlState is the one State of every guard a server attaches: the
// highest sequence seen outlives a policy reload.
type controlState struct {
	mu      sync.Mutex
	state   *control.MemoryState
	applied map[*control.Guard]string // the list digest the stored decisions follow
}

// attachControl gives p, when it names a controlList, a guard that reaches
// the list's registry with ro and remembers lists in the server's state.
func (s *Server) attachControl(p *policy.Policy, ro remote.Options) {
	if p == nil {
		return
	}
	s.control.mu.Lock()
	if s.control.state == nil {
		s.control.state = control.NewMemoryState()
	}
	st := s.control.state
	s.control.mu.Unlock()
	p.AttachControl(control.Options{Remote: ro, State: st, Refresh: s.controlRefresh()})
}

func (s *Server) controlRefresh() time.Duration {
	if s.ControlRefresh > 0 {
		return s.ControlRefresh
	}
	return control.DefaultRefresh
}

// guards are the control guards of the policies ingests use now.
func (s *Server) guards() []*control.Guard {
	in := s.ingester()
	var out []*control.Guard
	seen := map[*control.Guard]bool{}
	add := func(p *policy.Policy) {
		if p == nil {
			return
		}
		if g := p.ControlGuard(); g != nil && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	add(in.CurrentPolicy())
	for _, p := range in.StagePolicies() {
		add(p)
	}
	return out
}

// RefreshControl asks the registry for every policy's control list now
// and, when the list in force has changed since the stored decisions were
// last derived, re-derives them all (Reevaluate): a new list blocks
// versions ingested before it, and a lifted entry frees them. A list that
// expires or goes stale (maxAge) is such a change: every stored decision
// then fails closed, until a list counts again. WatchPolicy
// calls it on a timer; it returns whether it re-evaluated.
func (s *Server) RefreshControl(ctx context.Context) (bool, ReevaluateStats, error) {
	var errs []error
	changed := false
	s.control.mu.Lock()
	if s.control.applied == nil {
		s.control.applied = map[*control.Guard]string{}
	}
	for _, g := range s.guards() {
		if _, err := g.Refresh(ctx); err != nil {
			errs = append(errs, err)
		}
		d := g.InForce()
		if g.Usable() != nil {
			// Expired, or not refreshed for longer than maxAge: the
			// decisions stored under it fail closed until a list counts.
			d = "fail-closed " + d
		}
		if d != s.control.applied[g] {
			s.control.applied[g] = d
			changed = true
		}
	}
	s.control.mu.Unlock()
	var err error
	if len(errs) > 0 {
		err = fmt.Errorf("refresh control list: %v", errs)
	}
	if !changed {
		return false, ReevaluateStats{}, err
	}
	st, rerr := s.Reevaluate(ctx)
	if rerr != nil {
		err = rerr
	}
	return true, st, err
}
