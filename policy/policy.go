// Package policy decides what Factory may pull: the policy file, its CEL
// conditions, and the Decision, the one verdict model. A policy file names
// trust roots (sets of public keys with validity windows) and rules; every
// rule whose match fits an artifact applies, and an artifact no rule
// matches is denied. A Decision lists every check (named by the Check*
// constants) with a human reason, the same whether the CLI (verify
// --policy, or verify --key through KeyOnly), the Go API or the index
// evaluates it.
//
// Parse checks a policy file without touching the network; LoadKeys then
// opens the keys it names (files, inline PEM, KMS references). Dependency
// resolution, which asks a policy about each candidate, is package resolve.
package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/internal/yamlstrict"
	"github.com/connectsoft/marketplace/signing"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/google/cel-go/cel"
)

// ErrInvalidPolicy matches every error about the policy file itself.
var ErrInvalidPolicy = errors.New("invalid policy")

// File is the policy file as written (DESIGN §5).
type File struct {
	APIVersion string          `yaml:"apiVersion"`
	Kind       string          `yaml:"kind"`
	Mode       string          `yaml:"mode"`
	TrustRoots []TrustRootSpec `yaml:"trustRoots"`
	Rules      []RuleSpec      `yaml:"rules"`
	// ControlList is the operator's kill switch (package control).
	ControlList *ControlListSpec `yaml:"controlList"`
}

// ControlListSpec names the control list every decision consults: where
// it is, who signs it, and how long a copy that cannot be refreshed still
// counts (maxAge, a Go duration such as 24h; default 24h).
type ControlListSpec struct {
	Ref    string   `yaml:"ref"`
	Keys   []string `yaml:"keys"`
	MaxAge string   `yaml:"maxAge"`
}

// TrustRootSpec is a named set of public keys, valid within a window and,
// when Publishers is set, only for those publisher namespaces: a key a
// publisher holds must not vouch for another publisher's extensions.
type TrustRootSpec struct {
	Name       string     `yaml:"name"`
	Keys       []string   `yaml:"keys"`
	ValidFrom  *time.Time `yaml:"validFrom"`
	ValidUntil *time.Time `yaml:"validUntil"`
	// Publishers scopes the root to extensions named <publisher>/...;
	// left out, the root counts for every extension.
	Publishers []string `yaml:"publishers"`
}

// RuleSpec is one rule: what it matches and what it requires.
type RuleSpec struct {
	Name          string            `yaml:"name"`
	Match         MatchSpec         `yaml:"match"`
	Signatures    *SignaturesSpec   `yaml:"signatures"`
	Attestations  []AttestationSpec `yaml:"attestations"`
	Compatibility string            `yaml:"compatibility"`
	Licenses      *LicensesSpec     `yaml:"licenses"`
	Lifecycle     *LifecycleSpec    `yaml:"lifecycle"`
}

// MatchSpec selects artifacts by repository glob and kind.
type MatchSpec struct {
	Repositories []string `yaml:"repositories"`
	Kinds        []string `yaml:"kinds"`
}

// SignaturesSpec requires signatures by Threshold distinct trusted keys.
type SignaturesSpec struct {
	TrustRoots []string `yaml:"trustRoots"`
	Threshold  int      `yaml:"threshold"`
}

// AttestationSpec requires an attestation of Type from a trust root whose
// newest statement satisfies the CEL Condition. With Threshold, it
// requires that many distinct keys of the trust roots, each counted by its
// own newest statement of the type (N-of-M approvals: two curators of
// three approved, whatever the third said).
type AttestationSpec struct {
	Type       string   `yaml:"type"`
	TrustRoots []string `yaml:"trustRoots"`
	Condition  string   `yaml:"condition"`
	Threshold  int      `yaml:"threshold"`
}

// LicensesSpec allows or denies SPDX licence ids.
type LicensesSpec struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// LifecycleSpec says whether deprecated versions may be pulled and whose
// lifecycle statements may lift a yank (docs/policy.md, "Lifecycle").
type LifecycleSpec struct {
	AllowDeprecated bool `yaml:"allowDeprecated"`
	// RefusePinnedYanked refuses a yanked version even when it is pinned
	// by digest (a lockfile, mkt install --locked). Left false, a yank
	// stops new resolutions but keeps locked builds reproducible, as
	// Cargo's yank does; a production Factory that must stop using a
	// version the moment its publisher or security team yanks it sets it.
	RefusePinnedYanked bool `yaml:"refusePinnedYanked"`
	// Authorities are trust roots whose keys act as one lifecycle
	// authority: the newest statement among them stands, and only a later
	// one of theirs lifts their yank. Other trusted keys can only make a
	// version's status stricter.
	Authorities []string `yaml:"authorities"`
}

// Policy is a loaded, checked policy, ready to evaluate.
type Policy struct {
	// File is where the policy came from, for messages.
	File  string
	Audit bool
	roots map[string]*trustRoot
	rules []*rule
	// lines locate fields for LoadKeys's messages.
	lines yamlstrict.Lines
	// keysLoaded is set by LoadKeys; Evaluate refuses to run before it, as
	// a policy without its keys would trust nothing and say so wrongly.
	keysLoaded bool
	// control is the controlList as parsed (nil: none); its keys are
	// loaded by LoadKeys, and a guard is attached by AttachControl.
	control *controlList
}

type trustRoot struct {
	name string
	// at is the root's place in the file (trustRoots[2]), for messages.
	at string
	// refs are the key entries as written; keys are what LoadKeys opened.
	refs              []string
	keys              []*signing.Key
	validFrom, expire *time.Time
	// publishers is the namespace scope; nil counts for every extension.
	publishers map[string]bool
}

// scopeNote says why a scoped root does not count for in, or "" when it does.
func (t *trustRoot) scopeNote(in Input) string {
	if t.publishers == nil {
		return ""
	}
	if in.Extension != nil && t.publishers[in.Extension.Publisher()] {
		return ""
	}
	ns := make([]string, 0, len(t.publishers))
	for n := range t.publishers {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	what := "an artifact without a descriptor"
	if in.Extension != nil {
		what = in.Extension.Metadata.Name
	}
	return fmt.Sprintf("counts only for extensions of %s, not %s", strings.Join(ns, ", "), what)
}

type rule struct {
	spec    RuleSpec
	kinds   map[artifact.Kind]bool
	attests []*attestReq
}

type attestReq struct {
	typ   string
	roots []string
	cond  string
	prog  cel.Program
	// threshold > 0 counts distinct keys, each by its newest statement.
	threshold int
}

// Load reads a policy file, parses it and loads its keys; key paths in it
// are relative to its directory.
func Load(ctx context.Context, path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	p, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if err := p.LoadKeys(ctx, filepath.Dir(path)); err != nil {
		return nil, err
	}
	return p, nil
}

// Parse reads and checks a policy: the structure strictly, then every
// reference (trust roots, CEL, globs, licences), so that a policy that
// parses, once its keys are loaded (LoadKeys), can always be evaluated.
// It reads no file and makes no network call: keys are only named here.
func Parse(data []byte, file string) (*Policy, error) {
	var f File
	lines, problems := yamlstrict.Decode(data, file, &f)
	if problems != nil {
		return nil, policyError(problems)
	}
	ps := &parser{file: file, lines: lines, p: &Policy{File: file, roots: map[string]*trustRoot{}, lines: lines}}
	ps.header(f)
	for i, tr := range f.TrustRoots {
		ps.trustRoot(fmt.Sprintf("trustRoots[%d]", i), tr)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	if len(f.Rules) == 0 {
		ps.add("rules", "a policy needs at least one rule (an artifact no rule matches is denied)")
	}
	for i, rs := range f.Rules {
		ps.p.rules = append(ps.p.rules, ps.rule(fmt.Sprintf("rules[%d]", i), rs, env))
	}
	if f.ControlList != nil {
		ps.controlList("controlList", f.ControlList)
	}
	if len(ps.problems) > 0 {
		yamlstrict.Sort(ps.problems)
		return nil, policyError(ps.problems)
	}
	return ps.p, nil
}

// parser collects every problem of one policy file while its parts are
// checked, each by its own method.
type parser struct {
	file     string
	lines    yamlstrict.Lines
	problems []*yamlstrict.FieldError
	p        *Policy
}

func (ps *parser) add(field, format string, args ...any) {
	ps.problems = append(ps.problems, ps.lines.Problem(ps.file, field, format, args...))
}

// header checks apiVersion, kind and mode.
func (ps *parser) header(f File) {
	if f.APIVersion != artifact.APIVersion {
		ps.add("apiVersion", "%q is not supported: want %q", f.APIVersion, artifact.APIVersion)
	}
	if f.Kind != "Policy" {
		ps.add("kind", "%q: want Policy", f.Kind)
	}
	switch f.Mode {
	case "", "enforce":
	case "audit":
		ps.p.Audit = true
	default:
		ps.add("mode", "%q: want enforce or audit", f.Mode)
	}
}

// trustRoot checks one trust root and records its key references.
func (ps *parser) trustRoot(at string, tr TrustRootSpec) {
	if tr.Name == "" {
		ps.add(at+".name", "required")
		return
	}
	if ps.p.roots[tr.Name] != nil {
		ps.add(at+".name", "trust root %q is defined twice", tr.Name)
	}
	root := &trustRoot{name: tr.Name, at: at, refs: tr.Keys, validFrom: tr.ValidFrom, expire: tr.ValidUntil}
	if len(tr.Keys) == 0 {
		ps.add(at+".keys", "a trust root needs at least one key")
	}
	if tr.ValidFrom != nil && tr.ValidUntil != nil && !tr.ValidUntil.After(*tr.ValidFrom) {
		ps.add(at+".validUntil", "is not after validFrom")
	}
	if tr.Publishers != nil {
		root.publishers = map[string]bool{}
		if len(tr.Publishers) == 0 {
			ps.add(at+".publishers", "name at least one publisher namespace (e.g. [acme]), or leave publishers out for a root that counts for every extension")
		}
	}
	for j, ns := range tr.Publishers {
		if !validNamespace(ns) {
			ps.add(fmt.Sprintf("%s.publishers[%d]", at, j), "%q is not a publisher namespace: want the part before the / of an extension name (acme for acme/widget): 2 to 64 characters of a-z, 0-9 and -, starting and ending with a letter or digit", ns)
		}
		root.publishers[ns] = true
	}
	ps.p.roots[tr.Name] = root
}

// rule checks one rule: its match, and each of its requirements.
func (ps *parser) rule(at string, rs RuleSpec, env *cel.Env) *rule {
	r := &rule{spec: rs, kinds: map[artifact.Kind]bool{}}
	if rs.Name == "" {
		ps.add(at+".name", "required")
	}
	ps.match(at+".match", rs.Match, r)
	if s := rs.Signatures; s != nil {
		ps.signatures(at+".signatures", s)
	}
	for j, a := range rs.Attestations {
		r.attests = append(r.attests, ps.attestation(fmt.Sprintf("%s.attestations[%d]", at, j), a, env))
	}
	switch rs.Compatibility {
	case "", "required", "ignore":
	default:
		ps.add(at+".compatibility", "%q: want required or ignore", rs.Compatibility)
	}
	if l := rs.Lifecycle; l != nil && l.Authorities != nil {
		ps.roots(at+".lifecycle.authorities", l.Authorities)
	}
	if l := rs.Licenses; l != nil {
		ps.licenses(at+".licenses", l)
	}
	return r
}

func (ps *parser) match(at string, m MatchSpec, r *rule) {
	if len(m.Repositories) == 0 {
		ps.add(at+".repositories", "required: globs over registry/repository, e.g. registry.example.com/acme/**")
	}
	for j, g := range m.Repositories {
		if !doublestar.ValidatePattern(g) {
			ps.add(fmt.Sprintf("%s.repositories[%d]", at, j), "%q is not a valid glob", g)
		}
	}
	for j, k := range m.Kinds {
		kind, err := artifact.ParseKind(k)
		if err != nil {
			ps.add(fmt.Sprintf("%s.kinds[%d]", at, j), "%v", err)
		}
		r.kinds[kind] = true
	}
}

// signatures checks a threshold against the key entries of its roots;
// LoadKeys checks it again against distinct keys, once they are known.
func (ps *parser) signatures(at string, s *SignaturesSpec) {
	ps.roots(at+".trustRoots", s.TrustRoots)
	if s.Threshold < 0 {
		ps.add(at+".threshold", "must be at least 1")
	}
	refs := map[string]bool{}
	for _, n := range s.TrustRoots {
		if r := ps.p.roots[n]; r != nil {
			for _, k := range r.refs {
				refs[k] = true
			}
		}
	}
	if n := len(refs); s.Threshold > n && n > 0 {
		ps.add(at+".threshold", "%d is more than the %d keys of its trust roots", s.Threshold, n)
	}
}

func (ps *parser) attestation(at string, a AttestationSpec, env *cel.Env) *attestReq {
	typ, err := signing.PredicateType(a.Type)
	if err != nil {
		ps.add(at+".type", "%v", err)
	}
	ps.roots(at+".trustRoots", a.TrustRoots)
	req := &attestReq{typ: typ, roots: a.TrustRoots, cond: a.Condition, threshold: a.Threshold}
	if a.Threshold < 0 {
		ps.add(at+".threshold", "must be at least 1 (or left out: the newest statement of any key of the roots counts)")
	}
	refs := map[string]bool{}
	for _, n := range a.TrustRoots {
		if r := ps.p.roots[n]; r != nil {
			for _, k := range r.refs {
				refs[k] = true
			}
		}
	}
	if n := len(refs); a.Threshold > n && n > 0 {
		ps.add(at+".threshold", "%d is more than the %d keys of its trust roots: it could never pass", a.Threshold, n)
	}
	if a.Condition != "" {
		prog, err := compileCEL(env, a.Condition)
		if err != nil {
			ps.add(at+".condition", "%v", err)
		}
		req.prog = prog
	}
	return req
}

func (ps *parser) licenses(at string, l *LicensesSpec) {
	for field, ids := range map[string][]string{".allow": l.Allow, ".deny": l.Deny} {
		for j, id := range ids {
			if ok, _ := spdxexp.ValidateLicenses([]string{id}); !ok {
				ps.add(fmt.Sprintf("%s%s[%d]", at, field, j), "%q is not an SPDX licence id", id)
			}
		}
	}
}

// roots checks that field names at least one trust root, each defined.
func (ps *parser) roots(field string, names []string) {
	if len(names) == 0 {
		ps.add(field, "name at least one trust root")
	}
	for j, n := range names {
		if ps.p.roots[n] == nil {
			ps.add(fmt.Sprintf("%s[%d]", field, j), "unknown trust root %q", n)
		}
	}
}

// LoadKeys opens every key the trust roots name: files (relative to
// baseDir), inline PEM, and KMS references, which ask the KMS over the
// network. Every key that fails to load is reported, by its place in the
// file, in one ErrInvalidPolicy error. Evaluate needs the keys loaded.
func (p *Policy) LoadKeys(ctx context.Context, baseDir string) error {
	var problems []*yamlstrict.FieldError
	for _, root := range p.roots {
		root.keys = root.keys[:0]
		for j, ref := range root.refs {
			k, err := signing.LoadKey(ctx, keyRef(ref, baseDir))
			if err != nil {
				problems = append(problems, p.lines.Problem(p.File, fmt.Sprintf("%s.keys[%d]", root.at, j), "%v", err))
				continue
			}
			root.keys = append(root.keys, k)
		}
	}
	if c := p.control; c != nil {
		c.keys = c.keys[:0]
		for j, ref := range c.spec.Keys {
			k, err := signing.LoadKey(ctx, keyRef(ref, baseDir))
			if err != nil {
				problems = append(problems, p.lines.Problem(p.File, fmt.Sprintf("controlList.keys[%d]", j), "%v", err))
				continue
			}
			c.keys = append(c.keys, k)
		}
	}
	for i, r := range p.rules {
		if s := r.spec.Signatures; s != nil {
			if n := countKeys(p, s.TrustRoots); s.Threshold > n && n > 0 {
				problems = append(problems, p.lines.Problem(p.File, fmt.Sprintf("rules[%d].signatures.threshold", i), "%d is more than the %d distinct keys of its trust roots", s.Threshold, n))
			}
		}
		for j, a := range r.attests {
			if n := countKeys(p, a.roots); a.threshold > n && n > 0 {
				problems = append(problems, p.lines.Problem(p.File, fmt.Sprintf("rules[%d].attestations[%d].threshold", i, j), "%d is more than the %d distinct keys of its trust roots", a.threshold, n))
			}
		}
	}
	if len(problems) > 0 {
		yamlstrict.Sort(problems)
		return policyError(problems)
	}
	p.keysLoaded = true
	return nil
}

// validNamespace is the publisher half of artifact.ValidName, checked with
// the same rule so that a namespace in a policy can match a real name.
func validNamespace(ns string) bool {
	return !strings.Contains(ns, "/") && artifact.ValidName(ns+"/ns")
}

func countKeys(p *Policy, roots []string) int {
	seen := map[string]bool{}
	for _, n := range roots {
		if r := p.roots[n]; r != nil {
			for _, k := range r.keys {
				seen[k.Fingerprint] = true
			}
		}
	}
	return len(seen)
}

// keyRef resolves a key entry: inline PEM and KMS references stay as they
// are; file paths are relative to the policy's directory.
func keyRef(ref, baseDir string) string {
	if strings.Contains(ref, "-----BEGIN") || strings.Contains(ref, "://") || filepath.IsAbs(ref) {
		return ref
	}
	return filepath.Join(baseDir, ref)
}

// Error lists every problem of a policy file.
type Error struct{ Problems []*yamlstrict.FieldError }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	if len(lines) == 1 {
		return "invalid policy: " + lines[0]
	}
	return fmt.Sprintf("invalid policy (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrInvalidPolicy) hold.
func (e *Error) Is(target error) bool { return target == ErrInvalidPolicy }

func policyError(p []*yamlstrict.FieldError) error { return &Error{Problems: p} }

// Keys lists every key of every trust root, each once, for showing who
// signed what (the index lists evidence with them).
func (p *Policy) Keys() []*signing.Key {
	seen := map[string]bool{}
	var out []*signing.Key
	for _, r := range p.roots {
		for _, k := range r.keys {
			if !seen[k.Fingerprint] {
				seen[k.Fingerprint] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// NextChange is the first instant strictly after `after` at which a trust
// root's window opens (validFrom) or closes (validUntil), or zero when no
// window edge lies after it. Decisions depend on the time they are made
// at only through these edges (and the statements' own times), so the
// index re-derives its stored decisions at each one instead of showing a
// rotated-out key's signature as trusted, or a new root's as untrusted.
func (p *Policy) NextChange(after time.Time) time.Time {
	var next time.Time
	for _, r := range p.roots {
		for _, edge := range []*time.Time{r.validFrom, r.expire} {
			if edge != nil && edge.After(after) && (next.IsZero() || edge.Before(next)) {
				next = *edge
			}
		}
	}
	return next
}
