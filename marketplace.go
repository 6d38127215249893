// Package marketplace is the Go API Factory uses to consume extensions:
// Verify decides whether one artifact may be pulled under a policy, Resolve
// chooses versions across a dependency graph, and Install unpacks the
// chosen ones into a directory and records them in a lockfile, all or
// nothing. The mkt CLI's verify --policy, resolve and install are thin
// wrappers around these functions.
package marketplace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"github.com/connectsoft/marketplace/signing"
	"golang.org/x/sync/errgroup"
)

// Options configure Resolve and Install.
type Options struct {
	// Registry is HOST[/PREFIX]: acme/crm lives at HOST/PREFIX/acme/crm.
	Registry string
	// Remote says how to reach the registry.
	Remote remote.Options
	// Policy decides what may be installed; nil installs only what is
	// compatible (and is refused by Install, which needs a policy).
	Policy *policy.Policy
	// FactoryVersion is the Factory the extensions are for.
	FactoryVersion string
	// Dir receives DIR/<publisher>/<name>/ for each extension.
	Dir string
	// Lockfile is where Install records what it installed; "" means
	// extensions.lock in the current directory.
	Lockfile string
	// Locked installs exactly the lockfile's digests (verified again) and
	// never rewrites it.
	Locked bool
	// Concurrency bounds parallel downloads; 0 means 4.
	Concurrency int
	// Limits bound what each layer may unpack to.
	Limits artifact.Limits
	// Source overrides where versions come from (tests, an in-memory
	// catalog); nil means the registry.
	Source resolve.Source
	// Index, when set, chooses instead (by the decisions it made at
	// ingest) and the registry serves; nothing it says is taken on trust.
	// Every chosen digest is fetched from the registry and must be the
	// name and version asked for, within every constraint, in a repository
	// Policy has a rule for (and its publisher's, when the index names
	// them), and allowed by Policy as a choice the user did not pin (a
	// yanked version is refused). A refused version is excluded and the
	// index asked again; the selection's PassedOver says why.
	Index *client.Client
	// ReportInstalls makes Install report what it installed to Index, one
	// install event (CloudEvents, io.connectsoft.marketplace.install.v1)
	// per extension, for the tenant of Index's token (DESIGN §6.4). It is
	// opt-in: the Go API reports nothing unless asked. A report that fails
	// does not fail the install; Installed.Usage says what became of it.
	ReportInstalls bool
	// UsageSource is the CloudEvents source of the reports, a URI naming
	// the sender; "" means urn:connectsoft:marketplace:go-api.
	UsageSource string
	// Snapshot, when set, lists the versions instead of a registry or an
	// index: a signed catalog verified by OpenSnapshot. Each chosen
	// version is still fetched by the digest the snapshot names (from
	// Remote: a registry, or the OCI layout OpenSnapshot set), must be the
	// name and version listed, and is judged by Policy like any other.
	Snapshot *snapshot.Snapshot
}

// Verify fetches the artifact ref names and evaluates the policy on it.
// The decision is the same one the CLI and the index print.
func Verify(ctx context.Context, ref string, p *policy.Policy, factoryVersion string, ro remote.Options) (*policy.Decision, error) {
	// One registry client, one connection pool, for the artifact, its
	// evidence and its content.
	ro, err := ro.Shared()
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	attachControl(p, ro)
	pinned := strings.Contains(ref, "@")
	c, d, err := decide(ctx, ref, pinned, p, factoryVersion, ro, sc)
	if err != nil {
		return nil, err
	}
	// The decision judged the config; what would be installed is the
	// layer's extension.yaml, which must say the same (Install checks the
	// same at unpack, so resolution reads no layer).
	if err := artifact.CheckContentAt(ctx, c.Reference, ro, c.Artifact); err != nil {
		return nil, err
	}
	if _, ok := p.ControlList(); ok {
		// The control list blocks content under any name: read the
		// files' digests as the layer streams, and ask again.
		repo, err := artifact.NewRepository(c.Reference, ro)
		if err != nil {
			return nil, err
		}
		cd, err := artifact.ContentDigestOf(ctx, repo, c.Artifact, artifact.Limits{})
		if err != nil {
			return nil, err
		}
		d = p.RecheckContent(ctx, d, controlInput(c, pinned, cd))
	}
	return d, nil
}

// VerifyKeys decides whether trusted keys signed, and attested with each
// required predicate type, the artifact ref names: the key-only policy of
// policy.KeyOnly, evaluated on the evidence alone. It reads neither the
// manifest's config nor its layer, so it serves any artifact cosign can
// sign, with the requests stock cosign makes; the Decision is the same
// shape Verify returns. A ref by digest is a pin, as in Verify.
func VerifyKeys(ctx context.Context, ref string, keys []*signing.Key, require []string, ro remote.Options) (*policy.Decision, error) {
	p, err := policy.KeyOnly(keys, require)
	if err != nil {
		return nil, err
	}
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	ev, err := sc.Collect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return p.Evaluate(ctx, policy.Input{Repository: r.Registry + "/" + r.Repository, Digest: ev.Digest, PinnedByDigest: strings.Contains(ref, "@"), Evidence: ev})
}

// decide fetches what ref names, collects its evidence and evaluates p.
// pinned says the user chose this exact digest (a ref by digest, a locked
// install), which lets a yanked version through; a digest an index or a
// resolver chose is never a pin. sc reads the evidence: callers make one per
// call, not one per artifact.
func decide(ctx context.Context, ref string, pinned bool, p *policy.Policy, factoryVersion string, ro remote.Options, sc *signing.Client) (*resolve.Candidate, *policy.Decision, error) {
	c, err := resolve.FetchCandidate(ctx, ref, ro, sc)
	if err != nil {
		return nil, nil, err
	}
	d, err := p.Evaluate(ctx, policy.Input{
		Repository: c.Repository, Digest: c.Digest,
		PinnedByDigest: pinned, Extension: c.Extension,
		Evidence: c.Evidence, FactoryVersion: factoryVersion,
		LayerDigest: c.LayerDigest(),
	})
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

// attachControl gives p a guard for its control list, if it names one
// and has none yet: kept in memory for the life of p, which a long-running
// Factory holds. The CLI attaches one that remembers lists on disk first.
func attachControl(p *policy.Policy, ro remote.Options) {
	if p != nil {
		p.AttachControl(control.Options{Remote: ro})
	}
}

// controlInput is what the control list is asked about c once its
// content digest is known.
func controlInput(c *resolve.Candidate, pinned bool, contentDigest string) policy.Input {
	return policy.Input{Repository: c.Repository, Digest: c.Digest, PinnedByDigest: pinned, Extension: c.Extension,
		Evidence: c.Evidence, LayerDigest: c.LayerDigest(), ContentDigest: contentDigest}
}

func (o Options) source() (resolve.Source, error) {
	if o.Source != nil {
		return o.Source, nil
	}
	if o.Snapshot != nil {
		return o.Snapshot.Source(o.Remote)
	}
	if o.Registry == "" {
		return nil, errors.New("no registry: give HOST[/PREFIX]")
	}
	return resolve.NewRegistrySource(o.Registry, o.Remote)
}

// Resolve chooses versions for reqs and their dependencies.
func Resolve(ctx context.Context, reqs []resolve.Requirement, o Options) (*resolve.Resolution, error) {
	if o.Index != nil && o.Snapshot != nil {
		return nil, errors.New("resolve: give an index or a snapshot, not both")
	}
	if o.Index != nil {
		return resolveThroughIndex(ctx, reqs, o)
	}
	src, err := o.source()
	if err != nil {
		return nil, err
	}
	return resolve.Resolve(ctx, src, reqs, resolve.Options{FactoryVersion: o.FactoryVersion, Policy: o.Policy})
}

// Lock is the lockfile: exactly what was installed.
type Lock struct {
	LockfileVersion int         `json:"lockfileVersion"`
	Factory         string      `json:"factory,omitempty"`
	Extensions      []LockEntry `json:"extensions"`
}

// LockEntry pins one extension by digest.
type LockEntry struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// ContentDigest is the content digest of the files installed
	// (artifact's content digest): Audit compares the files on disk with
	// it and matches it against the control list.
	ContentDigest string `json:"contentDigest,omitempty"`
}

// ReadLock reads a lockfile.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lockfile: %w", err)
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lockfile %s: %w", path, err)
	}
	if l.LockfileVersion != 1 {
		return nil, fmt.Errorf("lockfile %s: version %d, want 1", path, l.LockfileVersion)
	}
	return &l, nil
}

// Installed is what Install did.
type Installed struct {
	Extensions []*resolve.Selected `json:"extensions"`
	Lock       *Lock               `json:"lock"`
	Lockfile   string              `json:"lockfile"`
	// Usage is what became of the install report (Options.ReportInstalls),
	// nil when none was sent.
	Usage *UsageReported `json:"usage,omitempty"`
}

// UsageReported is the outcome of an install report: the index's answer,
// or why it could not be sent. Either way the install stands.
type UsageReported struct {
	*client.UsageReport
	// Error says why the report was not taken (the index unreachable, the
	// token refused); "" when the index answered.
	Error string `json:"error,omitempty"`
}

// Install resolves reqs (or reads the lockfile when Locked), checks every
// chosen version against the policy, and unpacks each into
// Dir/<publisher>/<name>/. Everything is staged first: if any extension
// fails, nothing in Dir changes and no lockfile is written.
func Install(ctx context.Context, reqs []resolve.Requirement, o Options) (*Installed, error) {
	if o.Policy == nil {
		return nil, errors.New("install: a policy is required")
	}
	if o.Dir == "" {
		return nil, errors.New("install: no target directory")
	}
	// One registry client for every extension installed.
	ro, err := o.Remote.Shared()
	if err != nil {
		return nil, err
	}
	o.Remote = ro
	attachControl(o.Policy, ro)
	lockPath := o.Lockfile
	if lockPath == "" {
		lockPath = "extensions.lock"
	}
	var chosen []*resolve.Selected
	if o.Locked {
		chosen, err = lockedSelection(ctx, lockPath, o)
	} else {
		var res *resolve.Resolution
		res, err = Resolve(ctx, reqs, o)
		if res != nil {
			chosen = res.Selected
		}
	}
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	contents, err := stageAndMove(ctx, chosen, o)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	lock := &Lock{LockfileVersion: 1, Factory: o.FactoryVersion}
	for i, s := range chosen {
		lock.Extensions = append(lock.Extensions, LockEntry{Name: s.Name, Version: s.Version, Reference: s.Reference, Digest: s.Digest, ContentDigest: contents[i]})
	}
	sort.Slice(lock.Extensions, func(i, j int) bool { return lock.Extensions[i].Name < lock.Extensions[j].Name })
	if !o.Locked {
		if err := writeAtomic(lockPath, lock); err != nil {
			return nil, fmt.Errorf("install: write lockfile: %w", err)
		}
	}
	out := &Installed{Extensions: chosen, Lock: lock, Lockfile: lockPath}
	if o.ReportInstalls && o.Index != nil && len(chosen) > 0 {
		out.Usage = reportInstalls(ctx, o, chosen)
	}
	return out, nil
}

// reportInstalls sends one install event per installed extension to the
// index, as one batch.
func reportInstalls(ctx context.Context, o Options, chosen []*resolve.Selected) *UsageReported {
	source := o.UsageSource
	if source == "" {
		source = "urn:connectsoft:marketplace:go-api"
	}
	events := make([]client.UsageEvent, len(chosen))
	for i, s := range chosen {
		events[i] = client.NewInstallEvent(source, s.Name, s.Version, s.Digest)
	}
	rep, err := o.Index.ReportUsage(ctx, events)
	if err != nil {
		return &UsageReported{Error: err.Error()}
	}
	return &UsageReported{UsageReport: rep}
}

// lockedSelection fetches every locked digest and evaluates the policy on
// it again: a review revoked since locking refuses the install.
func lockedSelection(ctx context.Context, lockPath string, o Options) ([]*resolve.Selected, error) {
	lock, err := ReadLock(lockPath)
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(o.Remote) // one for every locked extension
	if err != nil {
		return nil, err
	}
	var out []*resolve.Selected
	for _, e := range lock.Extensions {
		if !strings.HasSuffix(e.Reference, "@"+e.Digest) {
			return nil, fmt.Errorf("lockfile %s: %s's reference %s does not pin its digest %s", lockPath, e.Name, e.Reference, e.Digest)
		}
		c, d, err := decide(ctx, e.Reference, true, o.Policy, o.FactoryVersion, o.Remote, sc)
		if err != nil {
			return nil, fmt.Errorf("locked %s@%s (%s): %w", e.Name, e.Version, e.Digest, err)
		}
		if c.Name != e.Name || c.Version != e.Version {
			return nil, fmt.Errorf("locked %s@%s: %s holds %s@%s", e.Name, e.Version, e.Reference, c.Name, c.Version)
		}
		if !d.Allowed {
			return nil, fmt.Errorf("locked %s@%s (%s) is no longer allowed: %s", e.Name, e.Version, e.Digest, strings.Join(d.Failed(), "; "))
		}
		out = append(out, &resolve.Selected{Candidate: c, Decision: d, RequiredBy: []string{"lockfile"}})
	}
	return out, nil
}

// stageAndMove unpacks every extension under a staging directory in Dir,
// then moves each into place; on failure the staging directory goes and
// Dir keeps what it had. It returns the content digest of each, in the
// order of chosen; content the control list blocks is never moved in.
func stageAndMove(ctx context.Context, chosen []*resolve.Selected, o Options) (contents []string, err error) {
	created, err := artifact.MkdirAllTracked(o.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			artifact.RemoveCreated(created)
		}
	}()
	staging, err := os.MkdirTemp(o.Dir, ".mkt-install-*")
	if err != nil {
		return nil, err
	}
	contents = make([]string, len(chosen))
	defer os.RemoveAll(staging)
	g, gctx := errgroup.WithContext(ctx)
	conc := o.Concurrency
	if conc <= 0 {
		conc = 4
	}
	g.SetLimit(conc)
	for i, s := range chosen {
		g.Go(func() error {
			repo, err := artifact.NewRepository(s.Repository, o.Remote)
			if err != nil {
				return err
			}
			a := s.Artifact
			if a == nil {
				if a, err = artifact.Fetch(gctx, repo, s.Digest); err != nil {
					return err
				}
			}
			dst := filepath.Join(staging, filepath.FromSlash(s.Name))
			st, err := artifact.Extract(gctx, repo, a, dst, artifact.PullOptions{Limits: o.Limits})
			if err != nil {
				return fmt.Errorf("%s@%s: %w", s.Name, s.Version, err)
			}
			contents[i] = st.ContentDigest
			if _, ok := o.Policy.ControlList(); ok {
				c := *s.Candidate
				c.Artifact = a
				s.Decision = o.Policy.RecheckContent(gctx, s.Decision, controlInput(&c, o.Locked, st.ContentDigest))
				if !s.Decision.Allowed {
					return fmt.Errorf("%s@%s (%s) is refused: %s", s.Name, s.Version, s.Digest, strings.Join(s.Decision.Failed(), "; "))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, s := range chosen {
		final := filepath.Join(o.Dir, filepath.FromSlash(s.Name))
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(final); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(staging, filepath.FromSlash(s.Name)), final); err != nil {
			return nil, err
		}
	}
	return contents, nil
}

func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
