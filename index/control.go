package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	lru "github.com/hashicorp/golang-lru/v2"
	"oras.land/oras-go/v2/registry"
)

// The index honours the operator's control list (package control) through
// its policies' controlList, like every other consumer: each policy gets a
// guard whose State is the store (storeState), so that the highest
// sequence seen survives a policy reload, a restart, and holds for every
// replica; ingests decide with it (the content
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

// controlState is the State of every guard a server attaches: the
// store's (storeState) when it keeps control state, so that the highest
// sequence seen outlives a policy reload, a restart and is shared by
// replicas; else one MemoryState.
type controlState struct {
	mu      sync.Mutex
	state   *control.MemoryState
	applied map[*control.Guard]string // the list digest the stored decisions follow
	// pushed wakes WatchPolicy when the registry notifies a push to a
	// control list's repository (controlPushed); one pending wake is
	// enough, however many pushes arrive meanwhile.
	pushed chan struct{}
}

// controlPushed is the webhook's OnPush: a push to the repository of a
// policy's control list makes WatchPolicy ask for the lists now, instead
// of at the next refresh (a minute by default), so that the operator's
// block reaches the catalog within a second of its push. The notification
// only wakes the refresh: the list itself is read from its own reference
// and verified with the operator's keys, as on the timer, so a forged or
// mistaken notification costs one read of the list and changes nothing.
func (s *Server) controlPushed(repository string) {
	for _, p := range s.policies() {
		cfg, ok := p.ControlList()
		if !ok {
			continue
		}
		if ref, err := registry.ParseReference(cfg.Ref); err == nil && ref.Repository == repository {
			select {
			case s.control.pushed <- struct{}{}:
			default:
			}
			return
		}
	}
}

// controlStateTimeout bounds a read or write of the control state.
const controlStateTimeout = 30 * time.Second

// storeState is a control.State kept in the index's store for one
// operator key set: a list is remembered under its reference and the keys
// that verify it, so a policy trusting other keys for the same reference
// starts from its own state. Save only ever raises the sequence, also
// against another replica (store.ControlStore).
type storeState struct {
	cs   store.ControlStore
	keys string
}

// keySet names a set of operator keys by their fingerprints, whatever
// their order.
func keySet(keys []*signing.Key) string {
	fps := make([]string, 0, len(keys))
	for _, k := range keys {
		fps = append(fps, k.Fingerprint)
	}
	sort.Strings(fps)
	sum := sha256.Sum256([]byte(strings.Join(fps, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Load returns the newest list accepted from ref under the key set.
func (s storeState) Load(ref string) (*control.Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), controlStateTimeout)
	defer cancel()
	r, err := s.cs.ControlState(ctx, ref, s.keys)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &control.Record{Ref: r.Ref, Sequence: r.Sequence, Digest: r.Digest, FetchedAt: r.FetchedAt, List: r.List}, nil
}

// Save stores r unless the store holds a higher sequence already.
func (s storeState) Save(r *control.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), controlStateTimeout)
	defer cancel()
	_, err := s.cs.PutControlState(ctx, &store.ControlRecord{Ref: r.Ref, Keys: s.keys, Sequence: r.Sequence, Digest: r.Digest, FetchedAt: r.FetchedAt, List: r.List})
	return err
}

// attachControl gives p, when it names a controlList, a guard that reaches
// the list's registry with ro and remembers lists in the server's state.
func (s *Server) attachControl(p *policy.Policy, ro remote.Options) {
	if p == nil {
		return
	}
	var st control.State
	if cs, ok := s.Store.(store.ControlStore); ok {
		cfg, _ := p.ControlList()
		st = storeState{cs: cs, keys: keySet(cfg.Keys)}
	} else {
		s.control.mu.Lock()
		if s.control.state == nil {
			s.control.state = control.NewMemoryState()
		}
		st = s.control.state
		s.control.mu.Unlock()
	}
	cfg, _ := p.ControlList()
	p.AttachControl(control.Options{Remote: s.controlRemoteFor(cfg.Ref, ro), State: st, Refresh: s.controlRefresh()})
}

// controlRemoteFor is how the index reaches the registry of a control list
// at ref: as it reaches a source of that registry that is configured with
// plainHTTP (an in-cluster or local registry, mkt dev up's), else with the
// index's own options. The list is verified with the operator's keys
// either way; the transport only has to reach it.
func (s *Server) controlRemoteFor(ref string, ro remote.Options) remote.Options {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return ro
	}
	for _, src := range s.Config.Sources {
		if src.Registry == r.Registry && src.PlainHTTP {
			ro.PlainHTTP = true
			break
		}
	}
	return ro
}

func (s *Server) controlRefresh() time.Duration {
	if s.ControlRefresh > 0 {
		return s.ControlRefresh
	}
	return control.DefaultRefresh
}

// guards are the control guards of the policies ingests use now.
func (s *Server) guards() []*control.Guard {
	var out []*control.Guard
	seen := map[*control.Guard]bool{}
	for _, p := range s.policies() {
		if g := p.ControlGuard(); g != nil && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// policies are the policies ingests use now: the index's own, if any, and
// each stage's.
func (s *Server) policies() []*policy.Policy {
	in := s.ingester()
	var out []*policy.Policy
	if p := in.CurrentPolicy(); p != nil {
		out = append(out, p)
	}
	for _, p := range in.StagePolicies() {
		if p != nil {
			out = append(out, p)
		}
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
