package index

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
	"golang.org/x/sync/errgroup"
)

// ReevaluateStats says what one re-derivation of the stored decisions did.
type ReevaluateStats struct {
	Versions int // stored versions considered
	Updated  int // re-ingested under the current policy
	Skipped  int // no configured source holds their repository any more
	Errors   int
	Duration time.Duration
}

// reevaluateWorkers bounds concurrent re-ingests, as the crawl does.
const reevaluateWorkers = 8

// ReloadPolicy reads the config's policy file again (none configured: no
// policy), swaps it in for every later ingest at once, and re-derives the
// decision of every stored version under it (Reevaluate). A policy file
// that does not load leaves the current policy in place and says why.
func (s *Server) ReloadPolicy(ctx context.Context) (ReevaluateStats, error) {
	var p *policy.Policy
	if path := s.policyPath(); path != "" {
		var err error
		if p, err = policy.Load(ctx, path); err != nil {
			return ReevaluateStats{}, fmt.Errorf("reload policy: %w; the index keeps the policy it had", err)
		}
	}
	stages, err := LoadStagePolicies(ctx, s.Config)
	if err != nil {
		return ReevaluateStats{}, fmt.Errorf("reload policy: %w; the index keeps the policies it had", err)
	}
	s.attachControl(p, s.controlRemote)
	for _, sp := range stages {
		s.attachControl(sp, s.controlRemote)
	}
	s.ingester().SetPolicy(p)
	s.ingester().SetStagePolicies(stages)
	return s.Reevaluate(ctx)
}

// Reevaluate re-derives and stores the decision of every stored version
// under the current policy: each is ingested again by its digest (its
// artifact from the ingester's cache or the registry, its evidence from the
// registry), so badges, allowed and lifecycle follow a changed policy file
// or a trust root's window opening or closing, not only new pushes.
func (s *Server) Reevaluate(ctx context.Context) (ReevaluateStats, error) {
	start := time.Now()
	var st ReevaluateStats
	in := s.ingester()
	// The versions as they are now: re-ingests give them higher sequence
	// numbers, so paging stops at the newest number seen at the start.
	type stored struct{ tenant, repository, digest string }
	var all []stored
	var last int64
	for {
		page, err := s.Store.Changes(ctx, last, 1000)
		if err != nil {
			return st, fmt.Errorf("reevaluate: list stored versions: %w", err)
		}
		for _, v := range page {
			all = append(all, stored{v.Tenant, v.Repository, v.Digest})
			last = v.Seq
		}
		if len(page) < 1000 {
			break
		}
	}
	st.Versions = len(all)
	var updated, skipped, failed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reevaluateWorkers)
	for _, v := range all {
		src, repo := s.sourceOf(v.tenant, v.repository)
		if src == nil {
			skipped.Add(1)
			continue
		}
		g.Go(func() error {
			if _, err := in.IngestWith(gctx, src, repo, v.digest, signing.CollectOptions{}); err != nil {
				failed.Add(1)
				s.Log.Warn("reevaluate: ingest failed", "repository", v.repository, "digest", v.digest, "err", err)
				return nil
			}
			updated.Add(1)
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	st.Updated, st.Skipped, st.Errors, st.Duration = int(updated.Load()), int(skipped.Load()), int(failed.Load()), time.Since(start)
	return st, err
}

// WatchPolicy re-derives the stored decisions when they may change without
// a push: on every signal from reload (SIGHUP for `mkt index serve`) it
// reloads the policy file, and at each trust root's window edge
// ((*policy.Policy).NextChange) it re-evaluates under the same policy. It
// returns when ctx ends.
func (s *Server) WatchPolicy(ctx context.Context, reload <-chan os.Signal) {
	edge := time.NewTimer(0)
	<-edge.C
	// The control lists are asked for again on a timer of their own: a
	// new list re-derives the stored decisions (RefreshControl).
	controlTick := time.NewTicker(s.controlRefresh())
	defer controlTick.Stop()
	schedule := func() {
		edge.Stop()
		var next time.Time
		for _, p := range s.policies() {
			if n := p.NextChange(time.Now()); !n.IsZero() && (next.IsZero() || n.Before(next)) {
				next = n
			}
		}
		if !next.IsZero() {
			// A moment past the edge, so that the evaluation sees it.
			edge.Reset(time.Until(next) + 10*time.Millisecond)
		}
	}
	schedule()
	defer edge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			st, err := s.ReloadPolicy(ctx)
			s.Log.Info("policy reloaded; stored decisions re-derived", "versions", st.Versions, "updated", st.Updated,
				"skipped", st.Skipped, "errors", st.Errors, "duration", st.Duration, "err", err)
		case <-edge.C:
			st, err := s.Reevaluate(ctx)
			s.Log.Info("a trust root's window opened or closed; stored decisions re-derived", "versions", st.Versions,
				"updated", st.Updated, "errors", st.Errors, "duration", st.Duration, "err", err)
		case <-controlTick.C:
			s.refreshControlNow(ctx)
		case <-s.control.pushed:
			s.refreshControlNow(ctx)
		}
		schedule()
	}
}

// refreshControlNow is RefreshControl, logged: on WatchPolicy's timer and
// when a control list's repository was pushed to.
func (s *Server) refreshControlNow(ctx context.Context) {
	changed, st, err := s.RefreshControl(ctx)
	switch {
	case changed:
		s.Log.Info("control list changed; stored decisions re-derived", "versions", st.Versions,
			"updated", st.Updated, "errors", st.Errors, "duration", st.Duration, "err", err)
	case err != nil:
		s.Log.Warn("control list not refreshed", "err", err)
	}
}

func (s *Server) ingester() *Ingester { return s.Webhook.Ingester }

// policyPath is the config's policy file, relative to the config's
// directory; "" when none is configured.
func (s *Server) policyPath() string {
	path := s.Config.Policy
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(s.Config.Dir, path)
	}
	return path
}

// sourceOf finds the configured source of tenant that holds repository
// (registry/repository) and returns it with the repository's name inside
// the registry.
func (s *Server) sourceOf(tenant, repository string) (*Source, string) {
	for i := range s.Config.Sources {
		src := &s.Config.Sources[i]
		repo, ok := strings.CutPrefix(repository, src.Registry+"/")
		if ok && src.Tenant == tenant && src.Matches(src.Registry, repo) {
			return src, repo
		}
	}
	return nil, ""
}

// ListenAndServeWatchingPolicy is ListenAndServe with WatchPolicy running
// beside it: `mkt index serve` passes SIGHUP as reload. The server owns the
// watch like the crawler: a re-evaluation in progress at shutdown returns
// before the store closes.
func (s *Server) ListenAndServeWatchingPolicy(ctx context.Context, reload <-chan os.Signal) error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	return s.ServeWatchingPolicy(ctx, ln, reload)
}

// ServeWatchingPolicy is Serve with WatchPolicy running beside it, on a
// listener the caller made (mkt dev up, which writes its address first).
func (s *Server) ServeWatchingPolicy(ctx context.Context, ln net.Listener, reload <-chan os.Signal) error {
	return s.serve(ctx, ln, func(ctx context.Context) { s.WatchPolicy(ctx, reload) })
}
