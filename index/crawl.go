package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// Crawler reconciles sources with their registries, for registries that
// send no notifications and for anything a webhook missed. It costs one
// request per unchanged tag (a HEAD), and fetches only what changed.
type Crawler struct {
	Ingester *Ingester
	// Store finds the stored version of a tag, to compare digests with;
	// nil means the Ingester's store, which the SQL stores can do.
	Store VersionLocator
	// Workers bounds concurrent tag checks per source; 0 means 8.
	Workers int
	Log     *slog.Logger
	Metrics *Metrics // optional
}

// VersionLocator is what the crawl reads of a store: what is stored for a
// repository's tags, once per repository.
type VersionLocator interface {
	Tagged(ctx context.Context, tenant, repository string) (map[string]store.Tagged, error)
}

// CrawlStats says what one reconcile did.
type CrawlStats struct {
	Repositories int
	Tags         int
	Unchanged    int
	Ingested     int
	Skipped      int // not extensions
	Errors       int
	Duration     time.Duration
}

// Reconcile walks src's repositories (from the registry's catalog where it
// offers one, else the source's globs that name a repository literally)
// and ingests every SemVer tag whose digest differs from the stored one.
func (c *Crawler) Reconcile(ctx context.Context, src *Source) (CrawlStats, error) {
	start := time.Now()
	var st CrawlStats
	conn, err := c.Ingester.conn(src)
	if err != nil {
		return st, err
	}
	locator := c.Store
	if locator == nil {
		var ok bool
		if locator, ok = c.Ingester.Store.(VersionLocator); !ok {
			return st, errors.New("crawl: no Crawler.Store, and the ingester's store cannot list stored versions")
		}
	}
	remoteOpts := conn.remote
	repos, err := c.repositories(ctx, src, remoteOpts)
	if err != nil {
		return st, err
	}
	st.Repositories = len(repos)
	var tags, unchanged, ingested, skipped, failed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	workers := c.Workers
	if workers <= 0 {
		workers = 8
	}
	g.SetLimit(workers)
	// A repository that cannot be read ends the walk; the checks already
	// started are waited for, never left running past the return.
	var walkErr error
	for _, repoName := range repos {
		repo, err := artifact.NewRepository(src.Registry+"/"+repoName, remoteOpts)
		if err != nil {
			walkErr = err
			break
		}
		// The generation before the tag list is read: the ingests below
		// read what the list names, so they are as old as the list, and a
		// notification accepted meanwhile (a later generation) outranks them.
		gen, err := c.Ingester.generation(ctx)
		if err != nil {
			walkErr = fmt.Errorf("crawl %s: %w", repoName, err)
			break
		}
		var versions []string
		evidence := map[digest.Digest][]string{} // artifact → its evidence tags
		err = repo.Tags(ctx, "", func(page []string) error {
			for _, t := range page {
				if _, err := semver.StrictNewVersion(t); err == nil {
					versions = append(versions, t)
					continue
				}
				switch d, kind := evidenceTag(t); kind {
				case badEvidence:
					c.log().Info("crawl: skipped a tag shaped like evidence but malformed; it is not evidence", "repository", repoName, "tag", t)
				case sigEvidence, attEvidence, refsEvidence:
					evidence[d] = append(evidence[d], t)
				}
			}
			return nil
		})
		if err != nil && !artifact.IsNotFound(err) {
			walkErr = fmt.Errorf("list tags of %s: %w", repoName, err)
			break
		}
		var stored map[string]store.Tagged
		if len(versions) > 0 {
			// One query per repository, two columns: the crawl of an
			// unchanged registry is mostly this and the HEADs.
			if stored, err = locator.Tagged(ctx, src.Tenant, src.Registry+"/"+repoName); err != nil {
				walkErr = fmt.Errorf("crawl %s: %w", repoName, err)
				break
			}
		}
		for _, tag := range versions {
			tags.Add(1)
			g.Go(func() error {
				digest, ms, changed, err := c.changed(gctx, src, conn, repo, repoName, tag, evidence, stored)
				switch {
				case err != nil:
					failed.Add(1)
					c.log().Warn("crawl: check failed", "repository", repoName, "tag", tag, "err", err)
					return nil
				case !changed:
					unchanged.Add(1)
					return nil
				}
				// The digests the HEADs saw, not the tags, which may move
				// again; a missing evidence tag is no evidence.
				_, err = c.Ingester.ingest(withGeneration(gctx, gen), src, repoName, digest, signing.CollectOptions{Known: ms}, false)
				switch {
				case IsNotExtension(err):
					skipped.Add(1)
					c.Metrics.ingest("crawl", "skipped", time.Time{})
				case err != nil:
					failed.Add(1)
					c.Metrics.ingest("crawl", "failed", time.Time{})
					c.log().Warn("crawl: ingest failed", "repository", repoName, "tag", tag, "err", err)
				default:
					ingested.Add(1)
					c.Metrics.ingest("crawl", "stored", time.Time{})
				}
				return nil
			})
		}
	}
	err = g.Wait()
	if walkErr != nil {
		err = walkErr
	}
	st.Tags, st.Unchanged, st.Ingested = int(tags.Load()), int(unchanged.Load()), int(ingested.Load())
	st.Skipped, st.Errors, st.Duration = int(skipped.Load()), int(failed.Load()), time.Since(start)
	return st, err
}

// changed compares the registry's digest for tag (one HEAD) and the
// digests of the artifact's evidence tags (one HEAD each) with the stored
// ones, and returns the registry's: a signature, attestation or referrer
// added, replaced or removed since the version was decided re-verifies it,
// whether or not a notification said so.
func (c *Crawler) changed(ctx context.Context, src *Source, conn *sourceConn, repo *orasremote.Repository, repoName, tag string, evidence map[digest.Digest][]string, stored map[string]store.Tagged) (string, signing.Manifests, bool, error) {
	var ms signing.Manifests
	desc, err := repo.Resolve(ctx, tag)
	if err != nil {
		return "", ms, false, err
	}
	for _, t := range evidence[desc.Digest] {
		ed, err := repo.Resolve(ctx, t)
		if artifact.IsNotFound(err) {
			continue // deleted since the tag list
		}
		if err != nil {
			return "", ms, false, fmt.Errorf("evidence tag %s: %w", t, err)
		}
		_, kind := evidenceTag(t)
		kind.set(&ms, ed.Digest.String())
	}
	// Referrers pushed through the referrers API have no tag: where the
	// registry has the API, its answer is compared too (one request more
	// per version there; none on a registry without it).
	fp, err := conn.signing.ReferrersFingerprint(ctx, src.Registry+"/"+repoName+"@"+desc.Digest.String())
	if err != nil {
		return "", ms, false, err
	}
	ms.ReferrersAPI = fp
	d := desc.Digest.String()
	v, ok := stored[tag]
	if !ok {
		return d, ms, true, nil
	}
	return d, ms, v.Digest != d || v.EvidenceDigests != EncodeEvidenceManifests(ms), nil
}

// repositories lists the source's repositories: the catalog filtered by
// its globs, or, where the registry has no catalog, the globs that are
// plain repository names.
func (c *Crawler) repositories(ctx context.Context, src *Source, o remote.Options) ([]string, error) {
	reg, err := orasremote.NewRegistry(src.Registry)
	if err != nil {
		return nil, err
	}
	client, err := o.AuthClient()
	if err != nil {
		return nil, err
	}
	reg.Client, reg.PlainHTTP = client, o.PlainHTTP
	var out []string
	err = reg.Repositories(ctx, "", func(page []string) error {
		for _, r := range page {
			for _, g := range src.Repositories {
				if ok, _ := doublestar.Match(g, r); ok {
					out = append(out, r)
					break
				}
			}
		}
		return nil
	})
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil { // out of time, not without a catalog
		return nil, fmt.Errorf("list repositories of %s: %w", src.Registry, ctx.Err())
	}
	c.log().Info("crawl: no catalog, using the configured repositories", "registry", src.Registry, "err", err)
	out = out[:0]
	for _, g := range src.Repositories {
		if !strings.ContainsAny(g, "*?[{") {
			out = append(out, g)
		}
	}
	return out, nil
}

// Run reconciles every source at its interval until ctx ends, one
// goroutine per source, and returns only when all of them have: a caller
// that closes the store after Run returns closes it under no crawl.
func (c *Crawler) Run(ctx context.Context, sources []Source) {
	var wg sync.WaitGroup
	for i := range sources {
		src := &sources[i]
		wg.Go(func() {
			t := time.NewTicker(src.Interval)
			defer t.Stop()
			for {
				st, err := c.reconcileWithin(ctx, src)
				c.log().Info("crawl", "source", src.Name, "repositories", st.Repositories, "tags", st.Tags,
					"ingested", st.Ingested, "unchanged", st.Unchanged, "errors", st.Errors, "duration", st.Duration, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// reconcileWithin is Reconcile bounded by the source's CrawlTimeout
// (its interval when unset).
func (c *Crawler) reconcileWithin(ctx context.Context, src *Source) (CrawlStats, error) {
	limit := src.CrawlTimeout
	if limit <= 0 {
		limit = src.Interval
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	st, err := c.Reconcile(ctx, src)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("crawl of %s stopped after %s (crawlTimeout): %w", src.Registry, limit, ctx.Err())
	}
	return st, err
}

func (c *Crawler) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}
