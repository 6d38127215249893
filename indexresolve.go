package marketplace

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
)

// maxIndexAnswers bounds how often one resolution asks the index again
// after refusing what it offered: each answer excludes at least one more
// version, so an index with more refusable versions than this is given up
// on with the refusals listed.
const maxIndexAnswers = 64

// ErrIndexAnswer matches an index answer the client refused outright: it
// is not a choice that a later answer could replace (the requested name is
// missing, a name nobody asked for is added, or the index ignores the
// versions it was told to leave out).
var ErrIndexAnswer = errors.New("index answer refused")

// resolveThroughIndex lets the index choose and trusts none of it: every
// chosen version is fetched from the registry by the digest the index gave,
// and must be the name and version the index said, satisfy what was asked
// and what its parents' descriptors require, lie in a repository the local
// policy has a rule for (and, when the answer names them, one of the
// publisher's bound repositories), and be allowed by the local policy with
// nothing pinned: the index's repo@digest is its choice, not the user's, so
// a yanked version is refused. A refused version is excluded and the index
// asked again, until it offers an acceptable closure or has nothing left.
func resolveThroughIndex(ctx context.Context, reqs []resolve.Requirement, o Options) (*resolve.Resolution, error) {
	ro, err := o.Remote.Shared()
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	ck := &answerChecker{o: o, remote: ro, signing: sc, seen: map[string]*checked{}}
	refused := map[string][]string{} // NAME@VERSION → why the client refused it
	var excluded []string            // in the order refused
	for range maxIndexAnswers {
		res, err := o.Index.ResolveQuery(ctx, client.ResolveQuery{Requirements: reqs, Factory: o.FactoryVersion, Explain: true, Exclude: excluded})
		if err != nil {
			if len(excluded) > 0 {
				return nil, fmt.Errorf("%w; the client refused what the index offered before: %s", err, listRefusals(excluded, refused))
			}
			return nil, err
		}
		for _, s := range res.Selected {
			if s.Candidate != nil && refused[s.Name+"@"+s.Version] != nil {
				return nil, fmt.Errorf("%w: the index at %s offered %s@%s again although the client excluded it (an index without exclude= support?); refused: %s",
					ErrIndexAnswer, o.Index.URL, s.Name, s.Version, listRefusals(excluded, refused))
			}
		}
		out, refusals, err := ck.check(ctx, reqs, res)
		if err != nil {
			return nil, err
		}
		if len(refusals) == 0 {
			return withRefusals(out, refused), nil
		}
		keys := make([]string, 0, len(refusals))
		for k := range refusals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			refused[k] = refusals[k]
			excluded = append(excluded, k)
		}
	}
	return nil, fmt.Errorf("%w: the index at %s offered %d refused choices; giving up: %s", resolve.ErrUnresolvable, o.Index.URL, len(excluded), listRefusals(excluded, refused))
}

func listRefusals(order []string, refused map[string][]string) string {
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = k + " (" + strings.Join(refused[k], "; ") + ")"
	}
	return strings.Join(parts, "; ")
}

// withRefusals adds the client's refusals of each chosen name to the
// index's own explanation, newest first.
func withRefusals(sel []*resolve.Selected, refused map[string][]string) *resolve.Resolution {
	for _, s := range sel {
		for k, why := range refused {
			name, version, _ := strings.Cut(k, "@")
			if name == s.Name {
				s.PassedOver = append(s.PassedOver, resolve.PassedOver{Version: version, Reasons: why, RefusedLocally: true})
			}
		}
		resolve.NewerFirst(s.PassedOver)
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Name < sel[j].Name })
	return &resolve.Resolution{Selected: sel}
}

// answerChecker checks index answers, remembering what it fetched: asking
// again usually returns most of the closure unchanged.
type answerChecker struct {
	o       Options
	remote  remote.Options
	signing *signing.Client
	seen    map[string]*checked // reference → what checking it found
}

type checked struct {
	cand     *resolve.Candidate
	decision *policy.Decision
	refusal  []string
}

// check verifies one answer. It returns the selection to use when nothing
// is refused, the refused versions (NAME@VERSION → reasons) otherwise, and
// an error when the answer cannot be used at all.
func (ck *answerChecker) check(ctx context.Context, reqs []resolve.Requirement, res *resolve.Resolution) ([]*resolve.Selected, map[string][]string, error) {
	idx := ck.o.Index.URL
	byName := map[string]*resolve.Selected{}
	for _, s := range res.Selected {
		if s == nil || s.Candidate == nil || s.Name == "" {
			return nil, nil, fmt.Errorf("%w: the index at %s answered a selection without a name", ErrIndexAnswer, idx)
		}
		if prev := byName[s.Name]; prev != nil {
			return nil, nil, fmt.Errorf("%w: the index at %s chose both %s@%s and @%s", ErrIndexAnswer, idx, s.Name, prev.Version, s.Version)
		}
		byName[s.Name] = s
	}
	refusals := map[string][]string{}
	fetched := map[string]*checked{}
	for _, s := range res.Selected {
		c, err := ck.choice(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		if c.refusal != nil {
			refusals[s.Name+"@"+s.Version] = c.refusal
			continue
		}
		fetched[s.Name] = c
	}
	// What each name must satisfy: what was asked, and what the descriptors
	// fetched from the registry (not the index's word) require.
	type want struct{ by, constraint string }
	wants := map[string][]want{}
	for _, r := range reqs {
		wants[r.Name] = append(wants[r.Name], want{"requested", r.Constraint})
	}
	for _, c := range fetched {
		for _, d := range c.cand.Extension.Spec.Dependencies {
			wants[d.Name] = append(wants[d.Name], want{c.cand.Name + "@" + c.cand.Version, d.Version})
		}
	}
	for _, name := range sortedKeys(wants) {
		s := byName[name]
		if s == nil {
			var by []string
			for _, w := range wants[name] {
				by = append(by, w.by)
			}
			return nil, nil, fmt.Errorf("%w: %s was asked for %s (required by %s) and its answer (%s) leaves it out", ErrIndexAnswer, idx, name, strings.Join(by, ", "), answered(res))
		}
		for _, w := range wants[name] {
			ok, err := resolve.Satisfies(s.Version, w.constraint)
			if err != nil || !ok {
				k := s.Name + "@" + s.Version
				refusals[k] = append(refusals[k], fmt.Sprintf("the index chose %s@%s, which does not satisfy %s's constraint %q", s.Name, s.Version, w.by, w.constraint))
			}
		}
	}
	if len(refusals) > 0 {
		return nil, refusals, nil
	}
	out := make([]*resolve.Selected, 0, len(res.Selected))
	for _, s := range res.Selected {
		if wants[s.Name] == nil {
			return nil, nil, fmt.Errorf("%w: the index at %s added %s@%s (%s), which nothing asked for or depends on; asked: %s", ErrIndexAnswer, idx, s.Name, s.Version, s.Reference, asked(reqs))
		}
		c := fetched[s.Name]
		d := c.decision
		if d == nil {
			d = s.Decision // no local policy: the index's decision, for information
		}
		out = append(out, &resolve.Selected{Candidate: c.cand, Decision: d, RequiredBy: s.RequiredBy, PassedOver: s.PassedOver, BoundRepositories: s.BoundRepositories})
	}
	return out, nil, nil
}

// choice fetches one chosen version by the digest the index gave and
// checks it; a refusal is a reason to ask for another version, an error
// is not.
func (ck *answerChecker) choice(ctx context.Context, s *resolve.Selected) (*checked, error) {
	said := s.Name + "@" + s.Version
	if c, ok := ck.seen[s.Reference+"|"+said]; ok {
		return c, nil
	}
	c := &checked{}
	ck.seen[s.Reference+"|"+said] = c
	repo, digest, ok := strings.Cut(s.Reference, "@")
	if !ok || repo != s.Repository || digest != s.Digest || !strings.HasPrefix(digest, "sha256:") {
		c.refusal = []string{fmt.Sprintf("the index's reference %q for %s is not its repository %q @ its digest %q", s.Reference, said, s.Repository, s.Digest)}
		return c, nil
	}
	cand, err := resolve.FetchCandidate(ctx, s.Reference, ck.remote, ck.signing)
	switch {
	case artifact.IsNotFound(err) || errors.Is(err, artifact.ErrNotExtension) || errors.Is(err, artifact.ErrInvalidExtension):
		c.refusal = []string{fmt.Sprintf("the index said %s is %s, which cannot be used: %v", said, s.Reference, err)}
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("fetch %s, the index's choice for %s: %w", s.Reference, said, err)
	}
	if cand.Name != s.Name || cand.Version != s.Version {
		c.refusal = []string{fmt.Sprintf("the index said %s is %s, but that artifact is %s@%s", said, s.Reference, cand.Name, cand.Version)}
		return c, nil
	}
	if len(s.BoundRepositories) > 0 && !matchesAny(s.BoundRepositories, cand.Repository) {
		c.refusal = []string{fmt.Sprintf("the index put %s in %s, outside its publisher's repositories (%s)", said, cand.Repository, strings.Join(s.BoundRepositories, ", "))}
		return c, nil
	}
	c.cand = cand
	if p := ck.o.Policy; p != nil {
		d, err := p.Evaluate(ctx, policy.Input{Repository: cand.Repository, Digest: cand.Digest, Extension: cand.Extension,
			Evidence: cand.Evidence, FactoryVersion: ck.o.FactoryVersion, LayerDigest: cand.LayerDigest()})
		if err != nil {
			return nil, fmt.Errorf("%s, the index's choice for %s: %w", s.Reference, said, err)
		}
		switch {
		case len(d.Rules) == 0:
			// Even an audit-mode policy refuses this: a rule's repositories
			// say where a name may come from, and the index may not move it.
			c.refusal = []string{fmt.Sprintf("the index put %s in %s, which no rule of %s matches", said, cand.Repository, p.File)}
		case !d.Allowed:
			c.refusal = d.Failed()
		}
		c.decision = d
	}
	return c, nil
}

func matchesAny(globs []string, repository string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, repository); ok {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func answered(res *resolve.Resolution) string {
	var parts []string
	for _, s := range res.Selected {
		parts = append(parts, s.Name+"@"+s.Version)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func asked(reqs []resolve.Requirement) string {
	var parts []string
	for _, r := range reqs {
		parts = append(parts, r.Name+"@"+orAny(r.Constraint))
	}
	return strings.Join(parts, ", ")
}

func orAny(c string) string {
	if c == "" {
		return "any"
	}
	return c
}
