package resolve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/internal/semvercache"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
)

// ErrUnresolvable matches every resolution failure: no acceptable version,
// or requirers that conflict.
var ErrUnresolvable = errors.New("cannot resolve")

// ErrNotPublished matches, besides ErrUnresolvable, a resolution that
// failed because a name has no versions at all: none published, or none
// the source lets the caller see. The index answers it with 404.
var ErrNotPublished = errors.New("no versions published")

// Candidate is one version of one extension, as a source offers it.
type Candidate struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Repository is registry/repository; Reference is Repository@Digest.
	Repository string              `json:"repository"`
	Reference  string              `json:"reference"`
	Digest     string              `json:"digest"`
	Extension  *artifact.Extension `json:"-"`
	Evidence   *signing.Evidence   `json:"-"`
	// Artifact is the fetched manifest, when the source fetched one.
	Artifact *artifact.Artifact `json:"-"`
	// Decision, when the source has one (an index decides at ingest), is
	// used instead of evaluating Options.Policy.
	Decision *policy.Decision `json:"-"`
}

// LayerDigest is the digest of the candidate's content layer, "" when no
// manifest was fetched (a control list matches it).
func (c *Candidate) LayerDigest() string {
	if c.Artifact == nil || len(c.Artifact.Manifest.Layers) == 0 {
		return ""
	}
	return c.Artifact.Layer().Digest.String()
}

// Source lists the versions of an extension and fetches one of them. A
// registry is one; an index service is another; tests and benchmarks use
// memory.
type Source interface {
	// Versions lists the strict-SemVer versions published under name.
	Versions(ctx context.Context, name string) ([]string, error)
	// Candidate fetches one version's descriptor and evidence.
	Candidate(ctx context.Context, name, version string) (*Candidate, error)
}

// Requirement asks for an extension by name and constraint ("" = any).
type Requirement struct {
	Name       string `json:"name"`
	Constraint string `json:"constraint,omitempty"`
}

// ParseRequirement reads NAME[@CONSTRAINT].
func ParseRequirement(s string) (Requirement, error) {
	name, c, _ := strings.Cut(s, "@")
	if !artifact.ValidName(name) {
		return Requirement{}, fmt.Errorf("%q is not publisher/name[@constraint]", s)
	}
	if c != "" {
		if _, err := semver.NewConstraint(c); err != nil {
			return Requirement{}, fmt.Errorf("%q: %q is not a semver constraint", s, c)
		}
	}
	return Requirement{Name: name, Constraint: c}, nil
}

// Options say what a chosen version must satisfy.
type Options struct {
	// FactoryVersion, when set, excludes versions whose range it misses.
	FactoryVersion string
	// Policy, when set, excludes versions it does not allow.
	Policy *policy.Policy
}

// Selected is one chosen extension.
type Selected struct {
	*Candidate
	RequiredBy []string         `json:"requiredBy"`
	Decision   *policy.Decision `json:"decision,omitempty"`
	// PassedOver lists the newer versions that satisfied the constraints
	// but were refused, and why.
	PassedOver []PassedOver `json:"passedOver,omitempty"`
	// BoundRepositories, when the source knows them (an index with
	// publishers configured, DESIGN §6.1), are the globs over
	// registry/repository where the name's publisher may publish: a client
	// refuses a reference outside them, so an index cannot redirect a name
	// to another publisher's repository.
	BoundRepositories []string `json:"boundRepositories,omitempty"`
}

// PassedOver is a newer version not chosen, with the reasons.
type PassedOver struct {
	Version string   `json:"version"`
	Reasons []string `json:"reasons"`
	// RefusedLocally is true when the client refused what an index offered
	// (its own policy, or an answer that did not check out), rather than
	// the source passing it over: the user is told even without --explain.
	RefusedLocally bool `json:"refusedLocally,omitempty"`
}

// Resolution is the chosen closure, sorted by name.
type Resolution struct {
	Selected []*Selected `json:"selected"`
}

// Find returns the selection for name, or nil.
func (r *Resolution) Find(name string) *Selected {
	for _, s := range r.Selected {
		if s.Name == name {
			return s
		}
	}
	return nil
}

type constraint struct {
	raw string
	c   *semver.Constraints
	by  string
}

type resolver struct {
	ctx       context.Context
	src       Source
	opts      Options
	versions  map[string][]*semver.Version
	verdicts  map[string][]string // name@version → reasons refused (nil: accepted)
	cands     map[string]*Candidate
	decisions map[string]*policy.Decision
	chosen    map[string]*Selected // name + constraints → choice, across passes
}

// Resolve chooses, for every extension reachable from reqs through
// dependencies, the highest version that satisfies every constraint on it,
// the Factory version and the policy. Pre-releases are chosen only when a
// constraint asks for one. Choices are repeated until they no longer change
// (a newer parent can bring other constraints); a name whose constraints no
// version satisfies is an error naming its requirers.
func Resolve(ctx context.Context, src Source, reqs []Requirement, opts Options) (*Resolution, error) {
	r := &resolver{ctx: ctx, src: src, opts: opts, versions: map[string][]*semver.Version{},
		verdicts: map[string][]string{}, cands: map[string]*Candidate{}, decisions: map[string]*policy.Decision{},
		chosen: map[string]*Selected{}}
	var prev map[string]*Selected
	for iter := 0; iter < 64; iter++ {
		cur, violations, err := r.pass(reqs, prev)
		if err != nil {
			return nil, err
		}
		// A first pass (no carried-over constraints) without violations is
		// final: each choice was the highest acceptable under a subset of
		// its constraints and satisfies all of them, so it is the highest
		// under the whole set too.
		if (prev == nil && len(violations) == 0) || sameSelection(prev, cur) {
			if len(violations) > 0 {
				return nil, fmt.Errorf("%w: conflicting requirements: %s", ErrUnresolvable, strings.Join(violations, "; "))
			}
			out := &Resolution{}
			for _, s := range cur {
				out.Selected = append(out.Selected, s)
			}
			sort.Slice(out.Selected, func(i, j int) bool { return out.Selected[i].Name < out.Selected[j].Name })
			return out, nil
		}
		prev = cur
	}
	return nil, fmt.Errorf("%w: choices did not settle after 64 passes (a dependency cycle with moving constraints?)", ErrUnresolvable)
}

// pass chooses every reachable name once, walking breadth first from the
// roots so that names no longer required drop out. A name is chosen under
// the constraints known when it is reached, plus the "late" ones the
// previous pass's choices put on it (a diamond's second parent may come
// later in the walk); late ones may be stale, so a conflict caused by them
// alone is not an error. It returns the choices and the constraints they
// violate, which only a further pass can settle.
func (r *resolver) pass(reqs []Requirement, prev map[string]*Selected) (map[string]*Selected, []string, error) {
	cons := map[string][]constraint{}
	seen := map[string]bool{}
	var queue []string
	addCons := func(into map[string][]constraint, name, raw, by string, enqueue bool) error {
		key := name + "|" + by + "|" + raw
		if enqueue && seen[key] {
			return nil
		}
		c := constraint{raw: raw, by: by}
		if raw != "" {
			parsed, err := semvercache.Constraint(raw)
			if err != nil {
				return fmt.Errorf("%w: %s requires %s %q, not a semver constraint", ErrUnresolvable, by, name, raw)
			}
			c.c = parsed
		}
		if enqueue {
			seen[key] = true
			if _, ok := into[name]; !ok {
				queue = append(queue, name)
			}
		}
		into[name] = append(into[name], c)
		return nil
	}
	late := map[string][]constraint{}
	for _, p := range sortedSelections(prev) {
		for _, d := range p.Extension.Spec.Dependencies {
			if err := addCons(late, d.Name, d.Version, p.Name+"@"+p.Version, false); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, q := range reqs {
		if err := addCons(cons, q.Name, q.Constraint, "requested", true); err != nil {
			return nil, nil, err
		}
	}
	cur := map[string]*Selected{}
	for i := 0; i < len(queue); i++ {
		name := queue[i]
		sel, err := r.choose(name, append(append([]constraint(nil), cons[name]...), late[name]...))
		if err != nil && len(late[name]) > 0 {
			sel, err = r.choose(name, cons[name])
		}
		if err != nil {
			return nil, nil, err
		}
		cur[name] = sel
		parent := name + "@" + sel.Version
		for _, d := range sel.Extension.Spec.Dependencies {
			if err := addCons(cons, d.Name, d.Version, parent, true); err != nil {
				return nil, nil, err
			}
		}
	}
	var violations []string
	for name, s := range cur {
		v, _ := semvercache.StrictVersion(s.Version)
		s.RequiredBy = nil
		for _, c := range cons[name] {
			s.RequiredBy = append(s.RequiredBy, c.by+" ("+orAny(c.raw)+")")
			if c.c != nil && !c.c.Check(v) {
				violations = append(violations, fmt.Sprintf("%s@%s does not satisfy %s's %s", name, s.Version, c.by, c.raw))
			}
		}
	}
	sort.Strings(violations)
	return cur, violations, nil
}

func sortedSelections(m map[string]*Selected) []*Selected {
	out := make([]*Selected, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func orAny(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

// choose picks the highest acceptable version under cons. The choice
// depends only on the name and the constraint strings, so passes that meet
// the same ones again reuse it.
func (r *resolver) choose(name string, cons []constraint) (*Selected, error) {
	raws := make([]string, len(cons))
	for i, c := range cons {
		raws[i] = c.raw
	}
	sort.Strings(raws)
	key := name + "|" + strings.Join(raws, "|")
	if sel, ok := r.chosen[key]; ok {
		cp := *sel
		return &cp, nil
	}
	sel, err := r.chooseUncached(name, cons)
	if err != nil {
		return nil, err
	}
	r.chosen[key] = sel
	cp := *sel
	return &cp, nil
}

func (r *resolver) chooseUncached(name string, cons []constraint) (*Selected, error) {
	versions, err := r.list(name)
	if err != nil {
		return nil, err
	}
	sel := &Selected{}
	inRange := 0
	for _, v := range versions {
		ok := true
		for _, c := range cons {
			if c.c != nil && !c.c.Check(v) {
				ok = false
				break
			}
			if c.c == nil && v.Prerelease() != "" {
				ok = false // "any" never means a pre-release
				break
			}
		}
		if !ok {
			continue
		}
		inRange++
		reasons, err := r.verdict(name, v.Original())
		if err != nil {
			return nil, err
		}
		if len(reasons) > 0 {
			sel.PassedOver = append(sel.PassedOver, PassedOver{Version: v.Original(), Reasons: reasons})
			continue
		}
		sel.Candidate = r.cands[name+"@"+v.Original()]
		sel.Decision = r.decisions[name+"@"+v.Original()]
		return sel, nil
	}
	var wants []string
	for _, c := range cons {
		wants = append(wants, c.by+" wants "+orAny(c.raw))
	}
	switch {
	case len(versions) == 0:
		return nil, fmt.Errorf("%w %s: %w", ErrUnresolvable, name, ErrNotPublished)
	case inRange == 0 && len(cons) > 1:
		return nil, fmt.Errorf("%w %s: conflicting requirements, no version satisfies all of them: %s", ErrUnresolvable, name, strings.Join(wants, "; "))
	case inRange == 0:
		return nil, fmt.Errorf("%w %s: no version satisfies %s", ErrUnresolvable, name, strings.Join(wants, "; "))
	}
	var why []string
	for _, p := range sel.PassedOver {
		why = append(why, p.Version+": "+strings.Join(p.Reasons, ", "))
	}
	return nil, fmt.Errorf("%w %s: every version in range was refused (%s)", ErrUnresolvable, name, strings.Join(why, "; "))
}

// list returns name's versions, newest first, cached.
func (r *resolver) list(name string) ([]*semver.Version, error) {
	if vs, ok := r.versions[name]; ok {
		return vs, nil
	}
	raw, err := r.src.Versions(r.ctx, name)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", name, err)
	}
	vs := make([]*semver.Version, 0, len(raw))
	for _, s := range raw {
		if v, err := semvercache.StrictVersion(s); err == nil {
			vs = append(vs, v)
		}
	}
	sort.Sort(sort.Reverse(semver.Collection(vs)))
	r.versions[name] = vs
	return vs, nil
}

// verdict says why a version is refused (nil: acceptable), cached: a
// version is fetched and evaluated at most once per resolution.
func (r *resolver) verdict(name, version string) ([]string, error) {
	key := name + "@" + version
	if reasons, ok := r.verdicts[key]; ok {
		return reasons, nil
	}
	c, err := r.src.Candidate(r.ctx, name, version)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", key, err)
	}
	r.cands[key] = c
	var reasons []string
	if r.opts.FactoryVersion != "" {
		if ok, why := policy.Compatible(c.Extension, r.opts.FactoryVersion); !ok {
			reasons = append(reasons, why)
		}
	}
	switch {
	case c.Decision != nil:
		// Decided without a Factory version (at ingest): its compatibility
		// check is the one above, made with the version asked for.
		r.decisions[key] = c.Decision
		if c.Decision.Mode != "audit" {
			for _, ck := range c.Decision.Checks {
				if !ck.Passed && ck.Name != policy.CheckCompatibility {
					reasons = append(reasons, ck.Name+": "+ck.Reason)
				}
			}
		}
	case r.opts.Policy != nil:
		d, err := r.opts.Policy.Evaluate(r.ctx, policy.Input{
			Repository: c.Repository, Digest: c.Digest, Extension: c.Extension,
			Evidence: c.Evidence, FactoryVersion: r.opts.FactoryVersion, LayerDigest: c.LayerDigest(),
		})
		if err != nil {
			return nil, err
		}
		r.decisions[key] = d
		if !d.Allowed {
			for _, ck := range d.Checks {
				// The Factory version was checked above, with this same
				// version: say it once.
				if !ck.Passed && (ck.Name != policy.CheckCompatibility || r.opts.FactoryVersion == "") {
					reasons = append(reasons, ck.Name+": "+ck.Reason)
				}
			}
		}
	}
	r.verdicts[key] = reasons
	return reasons, nil
}

func sameSelection(a, b map[string]*Selected) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.Version != v.Version {
			return false
		}
	}
	return true
}

// RegistrySource maps names to repositories under a registry prefix
// (acme/crm → HOST/PREFIX/acme/crm) and reads versions from tags.
type RegistrySource struct {
	Prefix  string
	Remote  remote.Options
	signing *signing.Client
}

// NewRegistrySource opens a source over HOST[/PREFIX].
func NewRegistrySource(prefix string, o remote.Options) (*RegistrySource, error) {
	o, err := o.Shared() // one registry client for every candidate fetched
	if err != nil {
		return nil, err
	}
	c, err := signing.NewClient(o)
	if err != nil {
		return nil, err
	}
	return &RegistrySource{Prefix: strings.TrimSuffix(prefix, "/"), Remote: o, signing: c}, nil
}

// Repository is where name lives.
func (s *RegistrySource) Repository(name string) string { return s.Prefix + "/" + name }

// Versions lists the strict-SemVer tags of name's repository; cosign tags
// and anything else are ignored.
func (s *RegistrySource) Versions(ctx context.Context, name string) ([]string, error) {
	repo, err := artifact.NewRepository(s.Repository(name), s.Remote)
	if err != nil {
		return nil, err
	}
	var out []string
	err = repo.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			if _, err := semvercache.StrictVersion(t); err == nil {
				out = append(out, t)
			}
		}
		return nil
	})
	if artifact.IsNotFound(err) {
		return nil, nil
	}
	return out, err
}

// Candidate fetches the descriptor and collects the evidence of one version.
func (s *RegistrySource) Candidate(ctx context.Context, name, ref string) (*Candidate, error) {
	c, err := FetchCandidate(ctx, s.Repository(name)+":"+ref, s.Remote, s.signing)
	if err != nil {
		return nil, err
	}
	if c.Name != name || c.Version != ref {
		return nil, fmt.Errorf("%s:%s holds %s@%s, not %s@%s: the tag and the descriptor disagree", c.Repository, ref, c.Name, c.Version, name, ref)
	}
	return c, nil
}

// Satisfies says whether version meets constraint as resolution reads it:
// strict SemVer, and "" (any) never means a pre-release. A client checks an
// index's choice with it, so the rule is the resolver's own.
func Satisfies(version, constraint string) (bool, error) {
	v, err := semvercache.StrictVersion(version)
	if err != nil {
		return false, fmt.Errorf("version %q is not strict SemVer", version)
	}
	if constraint == "" {
		return v.Prerelease() == "", nil
	}
	c, err := semvercache.Constraint(constraint)
	if err != nil {
		return false, fmt.Errorf("%q is not a semver constraint", constraint)
	}
	return c.Check(v), nil
}

// NewerFirst sorts passed-over versions highest first, the order Resolve
// reports them in; versions that are not SemVer go last.
func NewerFirst(p []PassedOver) {
	sort.SliceStable(p, func(i, j int) bool {
		a, errA := semvercache.StrictVersion(p[i].Version)
		b, errB := semvercache.StrictVersion(p[j].Version)
		switch {
		case errA != nil || errB != nil:
			return errA == nil && errB != nil
		default:
			return a.GreaterThan(b)
		}
	})
}

// FetchCandidate fetches what ref (HOST/REPO:TAG or HOST/REPO@DIGEST)
// names and collects its signatures and attestations: everything a policy
// decision needs. Resolution, Factory's Verify and the index's ingest all
// start here.
func FetchCandidate(ctx context.Context, ref string, ro remote.Options, c *signing.Client) (*Candidate, error) {
	repo, err := artifact.NewRepository(ref, ro)
	if err != nil {
		return nil, err
	}
	a, err := artifact.Fetch(ctx, repo, repo.Reference.Reference)
	if err != nil {
		return nil, err
	}
	return CandidateOf(ctx, repo.Reference.Registry+"/"+repo.Reference.Repository, a, c)
}

// CandidateOf collects the signatures and attestations of a, an artifact
// already fetched from repoName: for callers that keep artifacts by digest
// (a digest names fixed content, its evidence can change).
func CandidateOf(ctx context.Context, repoName string, a *artifact.Artifact, c *signing.Client) (*Candidate, error) {
	d := a.Descriptor.Digest.String()
	ev, err := c.Collect(ctx, repoName+"@"+d)
	if err != nil {
		return nil, err
	}
	return &Candidate{Name: a.Extension.Metadata.Name, Version: a.Extension.Metadata.Version, Repository: repoName,
		Reference: repoName + "@" + d, Digest: d, Extension: a.Extension, Evidence: ev, Artifact: a}, nil
}

// MemorySource serves candidates held in memory: for callers that already
// have them (an index), for tests and for benchmarks.
type MemorySource struct {
	byName map[string]map[string]*Candidate
}

// NewMemorySource indexes candidates by name and version.
func NewMemorySource(cands []*Candidate) *MemorySource {
	m := &MemorySource{byName: map[string]map[string]*Candidate{}}
	for _, c := range cands {
		if m.byName[c.Name] == nil {
			m.byName[c.Name] = map[string]*Candidate{}
		}
		m.byName[c.Name][c.Version] = c
	}
	return m
}

// Versions lists name's versions.
func (m *MemorySource) Versions(_ context.Context, name string) ([]string, error) {
	out := make([]string, 0, len(m.byName[name]))
	for v := range m.byName[name] {
		out = append(out, v)
	}
	return out, nil
}

// Candidate returns one version.
func (m *MemorySource) Candidate(_ context.Context, name, version string) (*Candidate, error) {
	c, ok := m.byName[name][version]
	if !ok {
		return nil, fmt.Errorf("%s@%s: not found", name, version)
	}
	return c, nil
}
