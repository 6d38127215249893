package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	lru "github.com/hashicorp/golang-lru/v2"
)

// IngestStore is what ingesting needs of a store: the stored version an
// artifact is compared with, the write, and the name's owner and alerts of
// the identity binding (identity.go).
type IngestStore interface {
	Version(ctx context.Context, tenant, name, version string) (*store.Version, error)
	UpsertVersion(ctx context.Context, v *store.Version) (store.UpsertResult, error)
	ClaimName(ctx context.Context, name, tenant, repository string) (*store.NameOwner, error)
	AddAlert(ctx context.Context, a *store.Alert) (bool, error)
	Generation(ctx context.Context) (int64, error)
}

// Ingester turns a registry reference into a stored, verified version.
// Ingesting the same thing twice is harmless: the store is idempotent.
type Ingester struct {
	Store  IngestStore
	Policy *policy.Policy // nil: versions are stored without a decision
	// Remote returns how to reach a source's registry.
	Remote func(*Source) remote.Options
	// Publishers bind namespaces to tenants and repositories; artifacts
	// not bound to the name they claim are quarantined (identity.go).
	Publishers []Publisher
	// Subscriptions, when set, are told what ingests change (published,
	// yanked, review revoked, tag moved), queued in the version write's
	// own transaction.
	Subscriptions *Subscriptions

	// Stages are the policies of the stages (DESIGN §6.2) by stage name:
	// a source with a stage is decided by its stage's policy, and a version
	// that does not pass it is quarantined. A source whose stage has no
	// policy here quarantines everything (fail closed).
	Stages map[string]*policy.Policy

	// OnControlBlocked, when set, is called once for each version an
	// ingest (or a re-evaluation after a new control list) stores as
	// blocked by the policy's control list that was not stored blocked
	// before: the hook a subscription's control.blocked event hangs on.
	// d is the decision, whose control check says why. It runs on the
	// ingesting goroutine, after the version is stored: it must not block.
	OnControlBlocked func(ctx context.Context, v *store.Version, d *policy.Decision)

	conns sync.Map // source name → *sourceConn, reused across ingests and crawls
	// contents maps layer digests to content digests (control.go).
	contents contentCache
	// swapped is the policy SetPolicy installed, which replaces Policy.
	swapped atomic.Pointer[policyBox]
	// swappedStages is what SetStagePolicies installed, replacing Stages.
	swappedStages atomic.Pointer[map[string]*policy.Policy]

	// faultAfterRead is a fault-injection hook, set only by tests: it runs
	// after an ingest has read the registry and decided, before it writes,
	// so a test can hold one ingest there while a later one writes.
	faultAfterRead atomic.Pointer[func(ctx context.Context, v *store.Version)]
	// faultBeforeRead is a fault-injection hook, set only by tests: it
	// runs as an ingest starts, before it has read anything, so a test
	// can start an older event's ingest after a newer one's.
	faultBeforeRead atomic.Pointer[func(ctx context.Context, repository, ref string)]
}

// generationKey carries the evidence generation an ingest was assigned
// before it began (its queued event's, or the crawl's for a repository).
type generationKey struct{}

// withGeneration returns ctx under which ingests write with generation g
// instead of taking their own: the registry was read, or the event that
// names what to read was accepted, at g.
func withGeneration(ctx context.Context, g int64) context.Context {
	if g <= 0 {
		return ctx
	}
	return context.WithValue(ctx, generationKey{}, g)
}

// generation is the generation ctx carries, else the next one from the
// store: taken before anything of the registry is read. See docs/index.md,
// "Ingest ordering": evidence is written compare-and-swap on it, so of
// two ingests of one version the one that began later wins, on any
// replica, even when it saw less (a deleted attestation is real).
func (in *Ingester) generation(ctx context.Context) (int64, error) {
	if g, ok := ctx.Value(generationKey{}).(int64); ok && g > 0 {
		return g, nil
	}
	g, err := in.Store.Generation(ctx)
	if err != nil {
		return 0, Transient(fmt.Errorf("take an evidence generation: %w", err))
	}
	return g, nil
}

type policyBox struct{ p *policy.Policy }

// SetStagePolicies swaps the stage policies every later ingest evaluates
// with, safely while ingests run (a reload).
func (in *Ingester) SetStagePolicies(m map[string]*policy.Policy) { in.swappedStages.Store(&m) }

// StagePolicies are the stage policies ingests evaluate with now.
func (in *Ingester) StagePolicies() map[string]*policy.Policy {
	if m := in.swappedStages.Load(); m != nil {
		return *m
	}
	return in.Stages
}

// policyFor is the policy src's versions are decided by: its stage's when
// it has a stage (nil and staged: no policy loaded for the stage), the
// index-wide one otherwise.
func (in *Ingester) policyFor(src *Source) (p *policy.Policy, staged bool) {
	if src.Stage != "" {
		return in.StagePolicies()[src.Stage], true
	}
	return in.CurrentPolicy(), false
}

// SetPolicy swaps the policy every later ingest evaluates with (nil: none),
// safely while ingests run: a reloaded policy file takes effect at once
// for the webhook and the crawl, which share the ingester.
func (in *Ingester) SetPolicy(p *policy.Policy) { in.swapped.Store(&policyBox{p}) }

// CurrentPolicy is the policy ingests evaluate with now.
func (in *Ingester) CurrentPolicy() *policy.Policy {
	if b := in.swapped.Load(); b != nil {
		return b.p
	}
	return in.Policy
}

// artifactsCached bounds the artifacts a source remembers by digest. A
// version is typically ingested again within seconds of its push, when its
// signature and attestations arrive; the manifest and config it reads then
// are the ones it read before, since a digest names fixed content.
const artifactsCached = 4096

// sourceConn is how the index reaches one source's registry, kept so that
// connections and tokens survive from one ingest to the next: dialing and
// authenticating per artifact cost more than the artifact.
type sourceConn struct {
	remote    remote.Options // with a shared registry client
	signing   *signing.Client
	artifacts *lru.Cache[string, *artifact.Artifact] // repository@digest → artifact
}

func (in *Ingester) conn(src *Source) (*sourceConn, error) {
	if c, ok := in.conns.Load(src.Name); ok {
		return c.(*sourceConn), nil
	}
	ro, err := in.Remote(src).Shared()
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	artifacts, err := lru.New[string, *artifact.Artifact](artifactsCached)
	if err != nil {
		return nil, err
	}
	actual, _ := in.conns.LoadOrStore(src.Name, &sourceConn{remote: ro, signing: sc, artifacts: artifacts})
	return actual.(*sourceConn), nil
}

// Ingested says what one ingest did.
type Ingested struct {
	Version *store.Version
	Result  store.UpsertResult
	// Evidence names the evidence manifests the decision was made from.
	Evidence signing.Manifests
}

// Ingest fetches src's repository at ref (a version tag or a digest),
// collects its signatures and attestations, evaluates the policy and stores
// the result. Artifacts that are not Marketplace extensions are skipped
// with errNotExtension.
func (in *Ingester) Ingest(ctx context.Context, src *Source, repository, ref string) (*Ingested, error) {
	return in.IngestWith(ctx, src, repository, ref, signing.CollectOptions{})
}

// IngestWith is Ingest with evidence manifests already named by digest,
// as a notification or the crawl's tag list names them: they are read by
// digest, never through a tag the registry may not have linked yet. An
// evidence tag that is missing falls back to the manifest the stored
// version was decided from, so one evidence event never erases another
// kind of evidence whose tag is still being linked.
func (in *Ingester) IngestWith(ctx context.Context, src *Source, repository, ref string, o signing.CollectOptions) (*Ingested, error) {
	return in.ingest(ctx, src, repository, ref, o, true)
}

// ingest is IngestWith; the crawl, which has just seen every evidence tag,
// turns the fallback to stored manifests off (a missing tag is none).
func (in *Ingester) ingest(ctx context.Context, src *Source, repository, ref string, o signing.CollectOptions, fallback bool) (*Ingested, error) {
	repoName := src.Registry + "/" + repository
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@" // a digest
	}
	if f := in.faultBeforeRead.Load(); f != nil {
		(*f)(ctx, repository, ref)
	}
	// The generation first, before the registry is read: the write below
	// is refused if a read that began later has been stored meanwhile.
	gen, err := in.generation(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest %s%s%s: %w", repoName, sep, ref, err)
	}
	conn, err := in.conn(src)
	if err != nil {
		return nil, err
	}
	a, err := in.fetch(ctx, conn, repoName, sep+ref)
	if err != nil {
		return nil, fmt.Errorf("ingest %s%s%s: %w", repoName, sep, ref, err)
	}
	ext, digest := a.Extension, a.Descriptor.Digest.String()
	v := &store.Version{
		Tenant: src.Tenant, Name: ext.Metadata.Name, Version: ext.Metadata.Version, Repository: repoName, Digest: digest,
		Kind: string(ext.Kind), Title: ext.Metadata.Title, Description: ext.Metadata.Description, Keywords: ext.Metadata.Keywords,
		License: ext.Spec.License, Factory: ext.Spec.Compatibility.Factory, Visibility: src.Visibility, Stage: src.Stage,
		Generation: gen,
	}
	// The name's binding first: an impostor is quarantined before the
	// stored version or any of its evidence is read.
	if q, err := in.bindIdentity(ctx, src, v); q != nil || err != nil {
		return q, err // quarantined (identity-mismatch alert), never stored
	}
	if !fallback {
		o.Fallback = signing.Manifests{}
	} else if stored, err := in.Store.Version(ctx, src.Tenant, ext.Metadata.Name, ext.Metadata.Version); err == nil && stored.Digest == digest {
		o.Fallback = DecodeEvidenceManifests(stored.EvidenceDigests)
	}
	ev, err := conn.signing.CollectFrom(ctx, repoName+"@"+digest, o)
	if err != nil {
		return nil, fmt.Errorf("ingest %s@%s: %w", repoName, digest, err)
	}
	if v.Descriptor, err = json.Marshal(ext); err != nil {
		return nil, err
	}
	// Evidence as the index shows it: every signature and attestation,
	// checked once, against the keys of the policy that count for this
	// version (the decision's own evidence), or listed unchecked without a
	// policy.
	var res *signing.Result
	var blocked *policy.Decision // the decision, when the control list blocks v
	pol, staged := in.policyFor(src)
	// Quarantined until the stage's policy passes: fail closed, whatever
	// the policy's mode (audit allows, but has not passed), and with no
	// policy for the stage at all.
	v.Quarantined = staged
	if pol != nil {
		// No Factory version yet: resolution checks each one asked for
		// against the version's range (resolve.Resolve), so a stage that
		// requires compatibility can still be passed here.
		pin := policy.Input{Repository: repoName, Digest: digest, Extension: ext, Evidence: ev, LayerDigest: a.Layer().Digest.String(),
			CompatibilityAtResolution: true}
		if _, ok := pol.ControlList(); ok {
			// Blocked files are refused under any name: the content
			// digest, read once per layer.
			if pin.ContentDigest, err = in.contentDigest(ctx, conn, repoName, a); err != nil {
				return nil, fmt.Errorf("ingest %s@%s: %w", repoName, digest, err)
			}
		}
		d, err := pol.Evaluate(ctx, pin)
		if err != nil {
			return nil, err
		}
		v.Allowed = d.Allowed
		v.Quarantined = staged && !passedStage(d)
		// The effective lifecycle under the policy's authority rule, not
		// the newest statement by anyone (a publisher could outdate a yank).
		if d.Lifecycle != nil {
			v.Lifecycle = d.Lifecycle.Status
		}
		switch policy.ControlHit(d) {
		case control.Block:
			v.Lifecycle = store.Blocked
			blocked = d
		case control.Yank:
			v.Lifecycle = "yanked"
		}
		if v.Decision, err = json.Marshal(d); err != nil {
			return nil, err
		}
		for _, ck := range d.Checks {
			switch {
			case ck.Name == policy.CheckSignature && ck.Passed:
				v.Signed = true
			case ck.Name == policy.CheckAttestation(signing.ReviewV1) && ck.Passed:
				v.Reviewed = true
			}
		}
		res = d.Evidence
	} else if res, err = ev.Check(ctx, signing.VerifyOptions{}); err != nil {
		return nil, err
	}
	// Without a policy no key is trusted: signatures are listed as
	// unverified, no version is "signed" (issue 9, item 10), and no
	// lifecycle statement counts.
	v.EvidenceDigests = EncodeEvidenceManifests(ev.Manifests)
	if v.Evidence, err = json.Marshal(struct {
		Signatures   []signing.SignatureResult   `json:"signatures"`
		Attestations []signing.AttestationResult `json:"attestations"`
	}{res.Signatures, res.Attestations}); err != nil {
		return nil, err
	}
	if f := in.faultAfterRead.Load(); f != nil {
		(*f)(ctx, v)
	}
	if in.Subscriptions != nil {
		ctx = store.WithWriteHook(ctx, in.Subscriptions.onWrite)
	}
	newlyBlocked := false
	if blocked != nil {
		prev, err := in.Store.Version(ctx, v.Tenant, v.Name, v.Version)
		newlyBlocked = err != nil || prev.Lifecycle != store.Blocked || prev.Digest != v.Digest
	}
	if newlyBlocked && in.Subscriptions != nil && blocked.Control != nil {
		// Queued before the version is stored blocked: a failure here
		// fails the ingest, whose retry still finds it newly blocked; the
		// event id is deterministic, so a retry sends nothing twice.
		if err := in.Subscriptions.ControlBlocked(ctx, []BlockedVersion{{Tenant: v.Tenant, Name: v.Name, Version: v.Version,
			Digest: v.Digest, Repository: v.Repository, Visibility: v.Visibility, Quarantined: v.Quarantined, Reason: blocked.Control.Reason, Sequence: blocked.Control.Sequence}}); err != nil {
			return nil, fmt.Errorf("ingest %s@%s: %w", repoName, digest, err)
		}
	}
	r, err := in.Store.UpsertVersion(ctx, v)
	if err != nil {
		return nil, err
	}
	if newlyBlocked && in.OnControlBlocked != nil && !r.Stale {
		in.OnControlBlocked(ctx, v, blocked)
	}
	if rs, ok := in.Store.(store.ReadmeStore); ok {
		in.storeReadme(ctx, rs, conn, repoName, a)
	}
	return &Ingested{Version: v, Result: r, Evidence: ev.Manifests}, nil
}

// storeReadme reads the README.md of a's layer, once per digest, for the
// extension page (readme.go). It reads the stored row first, so new
// evidence does not fetch the layer again. It never fails the ingest: the
// version is stored and usable without a README. A layer that cannot be
// read as one (an unsafe entry, a broken stream) is recorded as having
// none; a registry that cannot be reached now, or whose layer does not
// have the signed digest, records nothing, so the next ingest of the
// version (its next evidence, the crawl) tries again.
func (in *Ingester) storeReadme(ctx context.Context, rs store.ReadmeStore, conn *sourceConn, repoName string, a *artifact.Artifact) {
	digest := a.Descriptor.Digest.String()
	if _, err := rs.Readme(ctx, digest); !errors.Is(err, store.ErrNotFound) {
		return // stored (or the store cannot say: next time)
	}
	repo, err := artifact.NewRepository(repoName+"@"+digest, conn.remote)
	if err != nil {
		return
	}
	rec := &store.Readme{Digest: digest}
	r, err := artifact.FetchReadme(ctx, repo, a, artifact.ReadmeOptions{})
	var unsafe *artifact.UnsafeEntryError
	switch {
	case err != nil && !errors.As(err, &unsafe):
		// The registry or the network, or a layer that is not the one
		// signed (ErrDigestMismatch): try again next time.
		return
	case r != nil:
		rec.Found, rec.Text, rec.Size, rec.Truncated = true, r.Text, r.Size, r.Truncated
	}
	rs.PutReadme(ctx, rec) // a failed write is retried by the next ingest
}

// fetch reads the artifact at repoName+at (":tag" or "@digest"). An
// artifact read before by digest needs no request, only its evidence
// again. Keys are repository@digest, so a tag, which moves, never hits.
func (in *Ingester) fetch(ctx context.Context, conn *sourceConn, repoName, at string) (*artifact.Artifact, error) {
	if a, ok := conn.artifacts.Get(repoName + at); ok {
		return a, nil
	}
	repo, err := artifact.NewRepository(repoName+at, conn.remote)
	if err != nil {
		return nil, err
	}
	// The layer's extension.yaml must say what the config says; only
	// artifacts that passed are remembered.
	a, err := artifact.FetchChecked(ctx, repo, repo.Reference.Reference, artifact.Limits{})
	if err != nil {
		return nil, err
	}
	conn.artifacts.Add(repoName+"@"+a.Descriptor.Digest.String(), a)
	return a, nil
}

// EncodeEvidenceManifests is how a version's evidence manifests are
// stored (store.Version.EvidenceDigests): equal evidence, equal text.
func EncodeEvidenceManifests(m signing.Manifests) string {
	if m == (signing.Manifests{}) {
		return ""
	}
	b, _ := json.Marshal(m) // fields in a fixed order
	return string(b)
}

// DecodeEvidenceManifests reads what EncodeEvidenceManifests stored;
// anything else reads as no manifests.
func DecodeEvidenceManifests(s string) signing.Manifests {
	var m signing.Manifests
	if s != "" {
		json.Unmarshal([]byte(s), &m)
	}
	return m
}

// IsNotExtension reports whether an ingest skipped a non-extension artifact.
func IsNotExtension(err error) bool { return errors.Is(err, artifact.ErrNotExtension) }

// passedStage is whether d passed every check of its stage's policy that
// admits a version: all but the lifecycle and the control list. Those two
// are later statements about a version that was admitted — a yank, a
// deprecation, the operator's block — and they refuse it at resolution
// (d.Allowed) and mark it (Version.Lifecycle; a block hides it), but they
// do not put it back in quarantine: a yanked version stays listed, marked
// yanked, for everyone who saw it, so that its dependents' owners find it
// and its impact, instead of seeing it vanish as if never published.
func passedStage(d *policy.Decision) bool {
	for _, c := range d.Checks {
		if !c.Passed && c.Name != policy.CheckLifecycle && c.Name != policy.CheckControl {
			return false
		}
	}
	return true
}
