package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/github/go-spdx/v2/spdxexp"
)

// Input is what a decision is about.
type Input struct {
	// Repository is registry/repository, matched against rule globs.
	Repository string
	// Digest is the manifest digest evaluated.
	Digest string
	// PinnedByDigest is true when the caller asked for this exact digest,
	// which lets a yanked version through.
	PinnedByDigest bool
	Extension      *artifact.Extension
	Evidence       *signing.Evidence
	// FactoryVersion is the Factory the extension is for ("" if unknown).
	FactoryVersion string
	// Now is the time trust-root windows are checked at; zero means now.
	Now time.Time
}

// Check is one line of a decision.
type Check struct {
	Name   string `json:"name"`
	Rule   string `json:"rule,omitempty"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason"`
}

// Decision is the verdict of a policy on one artifact.
type Decision struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Allowed is whether Factory may pull it: Passed, or any verdict in
	// audit mode.
	Allowed bool `json:"allowed"`
	// Passed is whether every check passed.
	Passed bool     `json:"passed"`
	Mode   string   `json:"mode"`
	Rules  []string `json:"rules"`
	Checks []Check  `json:"checks"`
}

// Failed lists the reasons of the failed checks.
func (d *Decision) Failed() []string {
	var out []string
	for _, c := range d.Checks {
		if !c.Passed {
			out = append(out, c.Name+": "+c.Reason)
		}
	}
	return out
}

// Text renders the decision for people, one check a line.
func (d *Decision) Text() string {
	var b strings.Builder
	verdict := "ALLOWED"
	switch {
	case !d.Allowed:
		verdict = "DENIED"
	case !d.Passed:
		verdict = "ALLOWED (audit mode; would be denied)"
	}
	fmt.Fprintf(&b, "%s %s@%s\n", verdict, d.Repository, d.Digest)
	for _, c := range d.Checks {
		mark := "ok  "
		if !c.Passed {
			mark = "FAIL"
		}
		name := c.Name
		if c.Rule != "" {
			name += " [" + c.Rule + "]"
		}
		fmt.Fprintf(&b, "  %s %-40s %s\n", mark, name, c.Reason)
	}
	return b.String()
}

// Evaluate applies every rule that matches the input. No matching rule
// means deny. In audit mode the checks are reported and the artifact is
// allowed all the same.
func (p *Policy) Evaluate(ctx context.Context, in Input) (*Decision, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	d := &Decision{Repository: in.Repository, Digest: in.Digest, Mode: "enforce"}
	if p.Audit {
		d.Mode = "audit"
	}
	var matched []*rule
	for _, r := range p.rules {
		if r.matches(in) {
			matched = append(matched, r)
			d.Rules = append(d.Rules, r.spec.Name)
		}
	}
	if len(matched) == 0 {
		d.Checks = append(d.Checks, Check{Name: "match", Reason: fmt.Sprintf("no rule of %s matches %s (%s): denied", p.File, in.Repository, kindOf(in))})
		return d.finish(p.Audit), nil
	}
	// Check the evidence once against every key of every trust root valid
	// now; rules then count what their own roots signed.
	valid := map[string]bool{}
	var keys []*signing.Key
	seen := map[string]bool{}
	for name, r := range p.roots {
		if !r.validAt(now) {
			continue
		}
		valid[name] = true
		for _, k := range r.keys {
			if !seen[k.Fingerprint] {
				seen[k.Fingerprint] = true
				keys = append(keys, k)
			}
		}
	}
	var res *signing.Result
	if in.Evidence != nil {
		var err error
		if res, err = in.Evidence.Check(ctx, signing.VerifyOptions{Keys: keys}); err != nil {
			return nil, err
		}
	} else {
		res = &signing.Result{}
	}
	for _, r := range matched {
		d.Checks = append(d.Checks, r.check(p, in, res, valid, now)...)
	}
	d.Checks = append(d.Checks, p.lifecycle(in, res, matched)...)
	return d.finish(p.Audit), nil
}

func (d *Decision) finish(audit bool) *Decision {
	d.Passed = true
	for _, c := range d.Checks {
		d.Passed = d.Passed && c.Passed
	}
	d.Allowed = d.Passed || audit
	return d
}

func kindOf(in Input) string {
	if in.Extension == nil {
		return "unknown kind"
	}
	return string(in.Extension.Kind)
}

func (r *rule) matches(in Input) bool {
	if len(r.kinds) > 0 && (in.Extension == nil || !r.kinds[in.Extension.Kind]) {
		return false
	}
	for _, g := range r.spec.Match.Repositories {
		if ok, _ := doublestar.Match(g, in.Repository); ok {
			return true
		}
	}
	return false
}

// rootKeys are the fingerprints of the named roots valid now, and the
// names of those that are not.
func (p *Policy) rootKeys(names []string, valid map[string]bool) (map[string]bool, []string) {
	fps := map[string]bool{}
	var expired []string
	for _, n := range names {
		if !valid[n] {
			expired = append(expired, n)
			continue
		}
		for _, k := range p.roots[n].keys {
			fps[k.Fingerprint] = true
		}
	}
	return fps, expired
}

func windowNote(p *Policy, expired []string, now time.Time) string {
	if len(expired) == 0 {
		return ""
	}
	var parts []string
	for _, n := range expired {
		r := p.roots[n]
		w := ""
		if r.expire != nil && !now.Before(*r.expire) {
			w = "expired " + r.expire.Format(time.RFC3339)
		} else if r.validFrom != nil {
			w = "valid only from " + r.validFrom.Format(time.RFC3339)
		}
		parts = append(parts, fmt.Sprintf("trust root %s is not valid now (%s)", n, w))
	}
	return "; " + strings.Join(parts, "; ")
}

func (r *rule) check(p *Policy, in Input, res *signing.Result, valid map[string]bool, now time.Time) []Check {
	var out []Check
	name := r.spec.Name
	if s := r.spec.Signatures; s != nil {
		threshold := max(s.Threshold, 1)
		fps, expired := p.rootKeys(s.TrustRoots, valid)
		signers := map[string]bool{}
		for _, sig := range res.Signatures {
			if sig.Verified && fps[sig.Fingerprint] {
				signers[sig.Fingerprint] = true
			}
		}
		c := Check{Name: "signature", Rule: name, Passed: len(signers) >= threshold}
		switch {
		case len(res.Signatures) == 0:
			c.Reason = "unsigned"
		case c.Passed:
			c.Reason = fmt.Sprintf("signed by %d of %d trusted keys of %s (threshold %d)", len(signers), len(fps), strings.Join(s.TrustRoots, ", "), threshold)
		default:
			c.Reason = fmt.Sprintf("signed by %d distinct trusted keys of %s, %d needed", len(signers), strings.Join(s.TrustRoots, ", "), threshold)
		}
		c.Reason += windowNote(p, expired, now)
		out = append(out, c)
	}
	for _, a := range r.attests {
		fps, expired := p.rootKeys(a.roots, valid)
		short := signing.ShortName(a.typ)
		c := Check{Name: "attestation:" + short, Rule: name}
		latest := newest(res, a.typ, fps)
		switch {
		case latest == nil:
			c.Reason = "no " + short + " attestation by a trusted key of " + strings.Join(a.roots, ", ")
		case a.prog == nil:
			c.Passed = true
			c.Reason = "attested by " + shortFP(latest.Fingerprint) + describe(latest)
		default:
			ok, err := evalCEL(a.prog, latest.Statement.Predicate, latest.Statement, in.Extension)
			switch {
			case err != nil:
				c.Reason = fmt.Sprintf("condition %q: %v", a.cond, err)
			case ok:
				c.Passed = true
				c.Reason = fmt.Sprintf("newest %s%s satisfies %s", short, describe(latest), a.cond)
			default:
				c.Reason = fmt.Sprintf("newest %s%s fails %s", short, describe(latest), a.cond)
			}
		}
		c.Reason += windowNote(p, expired, now)
		out = append(out, c)
	}
	if r.spec.Compatibility == "required" {
		out = append(out, compatibility(in, name))
	}
	if l := r.spec.Licenses; l != nil {
		out = append(out, licenses(in, l, name))
	}
	return out
}

// newest is the latest verified attestation of typ by one of fps.
func newest(res *signing.Result, typ string, fps map[string]bool) *signing.AttestationResult {
	var sub signing.Result
	for _, a := range res.Attestations {
		if fps[a.Fingerprint] {
			sub.Attestations = append(sub.Attestations, a)
		}
	}
	return sub.Latest(typ)
}

func describe(a *signing.AttestationResult) string {
	var p map[string]any
	if a.Statement == nil || json.Unmarshal(a.Statement.Predicate, &p) != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"result", "status", "reviewer"} {
		if v, ok := p[k].(string); ok {
			parts = append(parts, k+"="+v)
		}
	}
	if !a.Time.IsZero() {
		parts = append(parts, "at "+a.Time.Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func shortFP(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// Compatible reports whether the Factory version satisfies an extension's
// range; it is the one place that reads the range.
func Compatible(ext *artifact.Extension, factory string) (bool, string) {
	v, err := strictVersion(factory)
	if err != nil {
		if v, err = semver.NewVersion(factory); err != nil {
			return false, fmt.Sprintf("Factory version %q is not a version", factory)
		}
	}
	c, err := parseConstraint(ext.Spec.Compatibility.Factory)
	if err != nil {
		return false, fmt.Sprintf("extension range %q is not a constraint", ext.Spec.Compatibility.Factory)
	}
	if c.Check(v) {
		return true, fmt.Sprintf("Factory %s satisfies %s", factory, ext.Spec.Compatibility.Factory)
	}
	return false, fmt.Sprintf("incompatible: Factory %s does not satisfy %s", factory, ext.Spec.Compatibility.Factory)
}

func compatibility(in Input, rule string) Check {
	c := Check{Name: "compatibility", Rule: rule}
	switch {
	case in.Extension == nil:
		c.Reason = "no descriptor to read the Factory range from"
	case in.FactoryVersion == "":
		c.Reason = "no Factory version given (--factory-version), and the policy requires compatibility"
	default:
		c.Passed, c.Reason = Compatible(in.Extension, in.FactoryVersion)
	}
	return c
}

// licenses checks the SPDX expression: OR needs one allowed branch, AND
// needs every part allowed; denied ids are never allowed.
func licenses(in Input, l *LicensesSpec, rule string) Check {
	c := Check{Name: "license", Rule: rule}
	if in.Extension == nil {
		c.Reason = "no descriptor to read the licence from"
		return c
	}
	expr := in.Extension.Spec.License
	ids, err := spdxexp.ExtractLicenses(expr)
	if err != nil {
		c.Reason = fmt.Sprintf("licence %q is not an SPDX expression: %v", expr, err)
		return c
	}
	deny := map[string]bool{}
	for _, d := range l.Deny {
		deny[d] = true
	}
	allow := l.Allow
	if len(allow) == 0 {
		allow = ids // deny-only: everything it names, except the denied
	}
	var usable []string
	for _, a := range allow {
		if !deny[a] {
			usable = append(usable, a)
		}
	}
	sort.Strings(usable)
	if len(usable) > 0 {
		ok, err := spdxexp.Satisfies(expr, usable)
		if err == nil && ok {
			c.Passed = true
			c.Reason = fmt.Sprintf("licence %s is allowed", expr)
			return c
		}
	}
	c.Reason = fmt.Sprintf("licence %s is not allowed (allowed: %s)", expr, strings.Join(usable, ", "))
	return c
}

// lifecycle reads the newest lifecycle statement by any trusted key:
// yanked is refused unless pinned by digest, deprecated unless a matching
// rule allows it.
func (p *Policy) lifecycle(in Input, res *signing.Result, rules []*rule) []Check {
	l := res.Latest(signing.LifecycleV1)
	if l == nil {
		return nil
	}
	var lc signing.Lifecycle
	if json.Unmarshal(l.Statement.Predicate, &lc) != nil {
		return []Check{{Name: "lifecycle", Reason: "unreadable lifecycle statement"}}
	}
	c := Check{Name: "lifecycle"}
	successor := ""
	if lc.Successor != "" {
		successor = "; use " + lc.Successor + " instead"
	}
	switch lc.Status {
	case "yanked":
		c.Passed = in.PinnedByDigest
		if c.Passed {
			c.Reason = "yanked (" + lc.Reason + "), allowed because it is pinned by digest" + successor
		} else {
			c.Reason = "yanked: " + lc.Reason + successor
		}
	case "deprecated":
		for _, r := range rules {
			if r.spec.Lifecycle != nil && r.spec.Lifecycle.AllowDeprecated {
				c.Passed = true
			}
		}
		if c.Passed {
			c.Reason = "deprecated (" + lc.Reason + "), allowed by policy" + successor
		} else {
			c.Reason = "deprecated: " + lc.Reason + successor
		}
	default:
		c.Passed, c.Reason = true, "active"
	}
	return []Check{c}
}
