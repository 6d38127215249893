// Package policy decides what Factory may pull. A policy file names trust
// roots (sets of public keys with validity windows) and rules; every rule
// whose match fits an artifact applies, and an artifact no rule matches is
// denied. A Decision lists every check with a human reason, the same
// whether the CLI, the Go API or the index evaluates it.
//
// Resolution (Resolve) is policy-aware: for every name in a dependency graph
// it picks the highest version that satisfies the constraints, the Factory
// version and the policy, and can say why each newer version was passed over.
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
// newest statement satisfies the CEL Condition.
type AttestationSpec struct {
	Type       string   `yaml:"type"`
	TrustRoots []string `yaml:"trustRoots"`
	Condition  string   `yaml:"condition"`
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
}

type trustRoot struct {
	name              string
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
}

// Load reads a policy file; key paths in it are relative to its directory.
func Load(ctx context.Context, path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return Parse(ctx, data, path, filepath.Dir(path))
}

// Parse reads and checks a policy: the structure strictly, then every
// reference (trust roots, keys, CEL, globs, licences), so that a policy
// that loads can always be evaluated.
func Parse(ctx context.Context, data []byte, file, baseDir string) (*Policy, error) {
	var f File
	lines, problems := yamlstrict.Decode(data, file, &f)
	if problems != nil {
		return nil, policyError(problems)
	}
	add := func(field, format string, args ...any) {
		problems = append(problems, lines.Problem(file, field, format, args...))
	}
	if f.APIVersion != artifact.APIVersion {
		add("apiVersion", "%q is not supported: want %q", f.APIVersion, artifact.APIVersion)
	}
	if f.Kind != "Policy" {
		add("kind", "%q: want Policy", f.Kind)
	}
	p := &Policy{File: file, roots: map[string]*trustRoot{}}
	switch f.Mode {
	case "", "enforce":
	case "audit":
		p.Audit = true
	default:
		add("mode", "%q: want enforce or audit", f.Mode)
	}
	for i, tr := range f.TrustRoots {
		at := fmt.Sprintf("trustRoots[%d]", i)
		if tr.Name == "" {
			add(at+".name", "required")
			continue
		}
		if p.roots[tr.Name] != nil {
			add(at+".name", "trust root %q is defined twice", tr.Name)
		}
		root := &trustRoot{name: tr.Name, validFrom: tr.ValidFrom, expire: tr.ValidUntil}
		if len(tr.Keys) == 0 {
			add(at+".keys", "a trust root needs at least one key")
		}
		for j, ref := range tr.Keys {
			k, err := signing.LoadKey(ctx, keyRef(ref, baseDir))
			if err != nil {
				add(fmt.Sprintf("%s.keys[%d]", at, j), "%v", err)
				continue
			}
			root.keys = append(root.keys, k)
		}
		if tr.ValidFrom != nil && tr.ValidUntil != nil && !tr.ValidUntil.After(*tr.ValidFrom) {
			add(at+".validUntil", "is not after validFrom")
		}
		if tr.Publishers != nil {
			root.publishers = map[string]bool{}
			if len(tr.Publishers) == 0 {
				add(at+".publishers", "name at least one publisher namespace (e.g. [acme]), or leave publishers out for a root that counts for every extension")
			}
		}
		for j, ns := range tr.Publishers {
			if !validNamespace(ns) {
				add(fmt.Sprintf("%s.publishers[%d]", at, j), "%q is not a publisher namespace: want the part before the / of an extension name (acme for acme/widget): 2 to 64 characters of a-z, 0-9 and -, starting and ending with a letter or digit", ns)
			}
			root.publishers[ns] = true
		}
		p.roots[tr.Name] = root
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	checkRoots := func(field string, names []string) {
		if len(names) == 0 {
			add(field, "name at least one trust root")
		}
		for j, n := range names {
			if p.roots[n] == nil {
				add(fmt.Sprintf("%s[%d]", field, j), "unknown trust root %q", n)
			}
		}
	}
	if len(f.Rules) == 0 {
		add("rules", "a policy needs at least one rule (an artifact no rule matches is denied)")
	}
	for i, rs := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		r := &rule{spec: rs, kinds: map[artifact.Kind]bool{}}
		if rs.Name == "" {
			add(at+".name", "required")
		}
		if len(rs.Match.Repositories) == 0 {
			add(at+".match.repositories", "required: globs over registry/repository, e.g. registry.example.com/acme/**")
		}
		for j, g := range rs.Match.Repositories {
			if !doublestar.ValidatePattern(g) {
				add(fmt.Sprintf("%s.match.repositories[%d]", at, j), "%q is not a valid glob", g)
			}
		}
		for j, k := range rs.Match.Kinds {
			kind, err := artifact.ParseKind(k)
			if err != nil {
				add(fmt.Sprintf("%s.match.kinds[%d]", at, j), "%v", err)
			}
			r.kinds[kind] = true
		}
		if s := rs.Signatures; s != nil {
			checkRoots(at+".signatures.trustRoots", s.TrustRoots)
			if s.Threshold < 0 {
				add(at+".signatures.threshold", "must be at least 1")
			}
			if n := countKeys(p, s.TrustRoots); s.Threshold > n && n > 0 {
				add(at+".signatures.threshold", "%d is more than the %d keys of its trust roots", s.Threshold, n)
			}
		}
		for j, a := range rs.Attestations {
			aat := fmt.Sprintf("%s.attestations[%d]", at, j)
			typ, err := signing.PredicateType(a.Type)
			if err != nil {
				add(aat+".type", "%v", err)
			}
			checkRoots(aat+".trustRoots", a.TrustRoots)
			req := &attestReq{typ: typ, roots: a.TrustRoots, cond: a.Condition}
			if a.Condition != "" {
				prog, err := compileCEL(env, a.Condition)
				if err != nil {
					add(aat+".condition", "%v", err)
				}
				req.prog = prog
			}
			r.attests = append(r.attests, req)
		}
		switch rs.Compatibility {
		case "", "required", "ignore":
		default:
			add(at+".compatibility", "%q: want required or ignore", rs.Compatibility)
		}
		if l := rs.Lifecycle; l != nil && l.Authorities != nil {
			checkRoots(at+".lifecycle.authorities", l.Authorities)
		}
		if l := rs.Licenses; l != nil {
			for field, ids := range map[string][]string{".licenses.allow": l.Allow, ".licenses.deny": l.Deny} {
				for j, id := range ids {
					if ok, _ := spdxexp.ValidateLicenses([]string{id}); !ok {
						add(fmt.Sprintf("%s%s[%d]", at, field, j), "%q is not an SPDX licence id", id)
					}
				}
			}
		}
		p.rules = append(p.rules, r)
	}
	if len(problems) > 0 {
		yamlstrict.Sort(problems)
		return nil, policyError(problems)
	}
	return p, nil
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
