package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/internal/semvercache"
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
	// CompatibilityAtResolution is set by the index, which decides a
	// version before any Factory asks for it: without a FactoryVersion, a
	// rule's `compatibility: required` then only checks that the
	// extension's Factory range parses and passes, saying that resolution
	// checks it, as resolution does for every Factory version asked for
	// (resolve reads the version's own range). Without it such a rule never
	// passes at the index, and a staged version never leaves quarantine.
	CompatibilityAtResolution bool
	// Now is the time trust-root windows are checked at; zero means now.
	Now time.Time
	// LayerDigest and ContentDigest (artifact's content digest) are
	// matched against the control list when known; a caller that learns
	// the content digest later calls RecheckContent.
	LayerDigest   string
	ContentDigest string
}

// Check names: every way of verifying (a policy file, `verify --key`, the
// index) reports through these, and callers that look for a check (the
// index marking a version signed or reviewed) compare against them.
const (
	// CheckMatch fails when no rule matches the artifact.
	CheckMatch = "match"
	// CheckSignature is a rule's signature threshold.
	CheckSignature = "signature"
	// CheckCompatibility is the Factory version against the extension's range.
	CheckCompatibility = "compatibility"
	// CheckLicense is the extension's SPDX licence against allow/deny.
	CheckLicense = "license"
	// CheckLifecycle is the version's effective lifecycle status.
	CheckLifecycle = "lifecycle"
	// CheckAttestationPrefix starts the name of an attestation check,
	// followed by the predicate type's short name (CheckAttestation).
	CheckAttestationPrefix = "attestation:"
)

// CheckAttestation names the check that requires an attestation of
// predicateType ("attestation:review" for the review type).
func CheckAttestation(predicateType string) string {
	return CheckAttestationPrefix + signing.ShortName(predicateType)
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
	// Lifecycle is the version's effective lifecycle under the authority
	// rule (docs/policy.md), nil when no valid lifecycle statement by a key
	// that counts exists (the version is active). The index stores
	// Lifecycle.Status from here (index/ingest.go), not the newest
	// statement by anyone, which a publisher could outdate.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// Control is what the policy's control list said (nil without one, or
	// when it could not be consulted: the control check says why).
	Control *ControlVerdict `json:"control,omitempty"`
	// Evidence is every signature and attestation found, checked against
	// the keys that count for this input: what the checks were computed
	// from, for callers that show it (the index stores it beside the
	// decision) without checking the evidence a second time.
	Evidence *signing.Result `json:"-"`
}

// Lifecycle is the effective lifecycle of one version: the strictest of
// the lifecycle authorities' newest statement and every other signer's
// newest statement, among valid statements only.
type Lifecycle struct {
	// Status is active, deprecated or yanked.
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Successor string `json:"successor,omitempty"`
	// Time is when the deciding statement says it was made.
	Time time.Time `json:"time,omitzero"`
	// Signer is the fingerprint of the key that made the deciding statement.
	Signer string `json:"signer,omitempty"`
	// Authority is true when that key belongs to a lifecycle authority.
	Authority bool `json:"authority,omitempty"`
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
	if !p.keysLoaded {
		return nil, fmt.Errorf("evaluate policy %s: its keys are not loaded (Policy.LoadKeys)", p.File)
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	d := &Decision{Repository: in.Repository, Digest: in.Digest, Mode: "enforce"}
	if p.Audit {
		d.Mode = "audit"
	}
	// Check the evidence once against every key of every trust root that
	// counts for this input (valid now, and scoped to its publisher if
	// scoped at all); rules then count what their own roots signed. A key
	// that does not count here verifies nothing, lifecycle included. The
	// evidence is checked even when no rule matches, for callers that
	// show it (Decision.Evidence).
	sc, keys := p.counting(in, now)
	res := &signing.Result{Reference: in.Repository + "@" + in.Digest, Digest: in.Digest}
	if in.Evidence != nil {
		var err error
		if res, err = in.Evidence.Check(ctx, signing.VerifyOptions{Keys: keys}); err != nil {
			return nil, err
		}
	}
	d.Evidence = res
	var matched []*rule
	for _, r := range p.rules {
		if r.matches(in) {
			matched = append(matched, r)
			d.Rules = append(d.Rules, r.spec.Name)
		}
	}
	if len(matched) == 0 {
		d.Checks = append(d.Checks, Check{Name: CheckMatch, Reason: fmt.Sprintf("no rule of %s matches %s (%s): denied", p.File, in.Repository, kindOf(in))})
		if p.control != nil {
			c, v := p.controlCheck(ctx, in, res)
			d.Checks, d.Control = append(d.Checks, c), v
		}
		return d.finish(p.Audit), nil
	}
	for _, r := range matched {
		d.Checks = append(d.Checks, r.check(p, in, res, sc)...)
	}
	var lc []Check
	d.Lifecycle, lc = p.lifecycle(in, res, matched, sc)
	d.Checks = append(d.Checks, lc...)
	if p.control != nil {
		c, v := p.controlCheck(ctx, in, res)
		d.Checks, d.Control = append(d.Checks, c), v
	}
	return d.finish(p.Audit), nil
}

// counting says which trust roots count for in at now, and their keys.
func (p *Policy) counting(in Input, now time.Time) (*scope, []*signing.Key) {
	sc := &scope{valid: map[string]bool{}, notes: map[string]string{}, now: now}
	var keys []*signing.Key
	seen := map[string]bool{}
	for name, r := range p.roots {
		if why := r.windowNote(now); why != "" {
			sc.notes[name] = why
			continue
		}
		if why := r.scopeNote(in); why != "" {
			sc.notes[name] = why
			continue
		}
		sc.valid[name] = true
		for _, k := range r.keys {
			if !seen[k.Fingerprint] {
				seen[k.Fingerprint] = true
				keys = append(keys, k)
			}
		}
	}
	return sc, keys
}

// KeysFor lists the keys that count for in (in.Now, or now when zero):
// those of trust roots inside their window and, when scoped, scoped to
// in's publisher. Evidence shown next to a decision should be checked with
// these rather than Keys, so that a key scoped to another publisher never
// shows as having verified anything about this extension.
func (p *Policy) KeysFor(in Input) []*signing.Key {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	_, keys := p.counting(in, now)
	return keys
}

// scope is which trust roots count for one evaluation, and why the others
// do not (outside their window, or scoped to other publishers).
type scope struct {
	valid map[string]bool
	notes map[string]string
	now   time.Time
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

// rootKeys are the fingerprints of the named roots that count for this
// input, and the names of those that do not.
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

// windowNote says why t does not count at now, or "" when it does.
func (t *trustRoot) windowNote(now time.Time) string {
	switch {
	case t.expire != nil && !now.Before(*t.expire):
		return "is not valid now (expired " + t.expire.Format(time.RFC3339) + ")"
	case t.validFrom != nil && now.Before(*t.validFrom):
		return "is not valid now (valid only from " + t.validFrom.Format(time.RFC3339) + ")"
	}
	return ""
}

// rootNote explains, for a check's reason, why the named roots did not count.
func (sc *scope) rootNote(names []string) string {
	var parts []string
	for _, n := range names {
		if why := sc.notes[n]; why != "" {
			parts = append(parts, "trust root "+n+" "+why)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func (r *rule) check(p *Policy, in Input, res *signing.Result, sc *scope) []Check {
	var out []Check
	name := r.spec.Name
	if s := r.spec.Signatures; s != nil {
		threshold := max(s.Threshold, 1)
		fps, expired := p.rootKeys(s.TrustRoots, sc.valid)
		signers := map[string]bool{}
		for _, sig := range res.Signatures {
			if sig.Verified && fps[sig.Fingerprint] {
				signers[sig.Fingerprint] = true
			}
		}
		c := Check{Name: CheckSignature, Rule: name, Passed: len(signers) >= threshold}
		switch {
		case len(res.Signatures) == 0:
			c.Reason = "unsigned"
		case c.Passed:
			c.Reason = fmt.Sprintf("signed by %d of %d trusted keys of %s (threshold %d)", len(signers), len(fps), strings.Join(s.TrustRoots, ", "), threshold)
		default:
			c.Reason = fmt.Sprintf("signed by %d distinct trusted keys of %s, %d needed", len(signers), strings.Join(s.TrustRoots, ", "), threshold)
			if len(signers) == 0 {
				c.Reason += " (" + notVerifiedNote(res) + ")"
			}
		}
		c.Reason += sc.rootNote(expired)
		out = append(out, c)
	}
	for _, a := range r.attests {
		if a.threshold > 0 {
			out = append(out, p.attestThreshold(a, in, res, sc, name))
			continue
		}
		fps, expired := p.rootKeys(a.roots, sc.valid)
		short := signing.ShortName(a.typ)
		c := Check{Name: CheckAttestation(a.typ), Rule: name}
		latest, ignored := newest(res, a.typ, fps, sc.now)
		var invalid error
		if latest != nil && latest.Statement != nil {
			invalid = signing.ValidatePredicate(a.typ, latest.Statement.Predicate)
		}
		switch {
		case latest == nil:
			c.Reason = "no " + short + " attestation by a trusted key of " + strings.Join(a.roots, ", ")
			if n := countOfType(res, a.typ); n > 0 {
				c.Reason += fmt.Sprintf(" (%d found, none verifies with them)", n)
			}
		case invalid != nil:
			// Our predicate types have a schema; a statement another tool
			// wrote (result "maybe", no time) is not a review, whoever
			// signed it.
			why := invalid.Error()
			var pe *signing.PredicateError
			if errors.As(invalid, &pe) {
				why = strings.Join(pe.Problems, "; ")
			}
			c.Reason = fmt.Sprintf("newest %s attestation by key %s is not a valid %s predicate: %s", short, shortFP(latest.Fingerprint), short, why)
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
		c.Reason += ignored + sc.rootNote(expired)
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

// newest is the latest valid attestation of typ by one of fps, and a note
// naming the statements it ignored for being dated in the future: newest
// wins only among valid statements, so a far-future date wins nothing.
func newest(res *signing.Result, typ string, fps map[string]bool, now time.Time) (*signing.AttestationResult, string) {
	var sub signing.Result
	var ignored []string
	for _, a := range res.Attestations {
		if !a.Verified || a.PredicateType != typ || !fps[a.Fingerprint] {
			continue
		}
		if field, at, future := signing.FutureDated(a.Statement, now); future {
			ignored = append(ignored, futureNote(a.Fingerprint, field, at))
			continue
		}
		sub.Attestations = append(sub.Attestations, a)
	}
	return sub.Latest(typ), ignoredNote(signing.ShortName(typ), ignored)
}

// notVerifiedNote says what was found that no key verified: each distinct
// reason of the signatures (which name the keys tried).
func notVerifiedNote(res *signing.Result) string {
	seen := map[string]bool{}
	var why []string
	for _, sig := range res.Signatures {
		if !sig.Verified && sig.Error != "" && !seen[sig.Error] {
			seen[sig.Error] = true
			why = append(why, sig.Error)
		}
	}
	note := fmt.Sprintf("%d signature(s) found", len(res.Signatures))
	if len(why) > 0 {
		note += ": " + strings.Join(why, "; ")
	}
	return note
}

// countOfType is how many attestations of typ were found, verified or not.
func countOfType(res *signing.Result, typ string) int {
	n := 0
	for _, a := range res.Attestations {
		if a.PredicateType == typ {
			n++
		}
	}
	return n
}

// futureNote names one statement ignored for its future date.
func futureNote(fp, field string, at time.Time) string {
	return fmt.Sprintf("key %s, %s %s", shortFP(fp), field, at.Format(time.RFC3339))
}

// ignoredNote is the part of a check's reason that says which statements
// did not count because they are dated in the future.
func ignoredNote(short string, ignored []string) string {
	if len(ignored) == 0 {
		return ""
	}
	return fmt.Sprintf("; ignored %d %s statement(s) dated more than %s in the future, which are invalid (%s)",
		len(ignored), short, skewText(), strings.Join(ignored, "; "))
}

func skewText() string {
	return fmt.Sprintf("%d minutes", int(signing.MaxClockSkew/time.Minute))
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
	v, err := semvercache.StrictVersion(factory)
	if err != nil {
		if v, err = semver.NewVersion(factory); err != nil {
			return false, fmt.Sprintf("Factory version %q is not a version", factory)
		}
	}
	c, err := semvercache.Constraint(ext.Spec.Compatibility.Factory)
	if err != nil {
		return false, fmt.Sprintf("extension range %q is not a constraint", ext.Spec.Compatibility.Factory)
	}
	if c.Check(v) {
		return true, fmt.Sprintf("Factory %s satisfies %s", factory, ext.Spec.Compatibility.Factory)
	}
	return false, fmt.Sprintf("incompatible: Factory %s does not satisfy %s", factory, ext.Spec.Compatibility.Factory)
}

func compatibility(in Input, rule string) Check {
	c := Check{Name: CheckCompatibility, Rule: rule}
	switch {
	case in.Extension == nil:
		c.Reason = "no descriptor to read the Factory range from"
	case in.FactoryVersion == "" && in.CompatibilityAtResolution:
		if _, err := semvercache.Constraint(in.Extension.Spec.Compatibility.Factory); err != nil {
			c.Reason = fmt.Sprintf("extension range %q is not a constraint", in.Extension.Spec.Compatibility.Factory)
			break
		}
		c.Passed = true
		c.Reason = fmt.Sprintf("checked at resolution: the Factory version asking must satisfy %s", in.Extension.Spec.Compatibility.Factory)
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
	c := Check{Name: CheckLicense, Rule: rule}
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

// strictness orders lifecycle statuses: other signers can only move a
// version up this scale past what the authorities said.
var strictness = map[string]int{"active": 0, "deprecated": 1, "yanked": 2}

// lcStatement is one valid lifecycle statement.
type lcStatement struct {
	signing.Lifecycle
	fp        string
	order     int
	authority bool
}

// after orders valid statements by their time, then by storage order.
func (s *lcStatement) after(o *lcStatement) bool {
	return s.Time.After(o.Time) || (s.Time.Equal(o.Time) && s.order > o.order)
}

// lifecycle derives the effective lifecycle (docs/policy.md, "Lifecycle"):
// among valid statements by keys that count, the authorities' newest
// statement and each other signer's newest statement are taken, and the
// strictest of them stands. So only the authorities lift their own yank,
// and any other key's yank only that key itself. Yanked is refused unless
// pinned by digest (and then too when a matching rule sets
// refusePinnedYanked), deprecated unless a matching rule allows it.
func (p *Policy) lifecycle(in Input, res *signing.Result, rules []*rule, sc *scope) (*Lifecycle, []Check) {
	var authNames []string
	allowDeprecated, refusePinned := false, false
	for _, r := range rules {
		if l := r.spec.Lifecycle; l != nil {
			allowDeprecated = allowDeprecated || l.AllowDeprecated
			refusePinned = refusePinned || l.RefusePinnedYanked
			for _, n := range l.Authorities {
				if !slices.Contains(authNames, n) {
					authNames = append(authNames, n)
				}
			}
		}
	}
	authFPs, notCounting := p.rootKeys(authNames, sc.valid)
	var stmts []*lcStatement
	var ignored, unreadable []string
	for i, a := range res.Attestations {
		// Evidence was checked only with keys that count for this input.
		if !a.Verified || a.PredicateType != signing.LifecycleV1 {
			continue
		}
		if field, at, future := signing.FutureDated(a.Statement, sc.now); future {
			ignored = append(ignored, futureNote(a.Fingerprint, field, at))
			continue
		}
		var lc signing.Lifecycle
		if a.Statement == nil || json.Unmarshal(a.Statement.Predicate, &lc) != nil {
			unreadable = append(unreadable, "key "+shortFP(a.Fingerprint)+": not a lifecycle predicate")
			continue
		}
		if _, ok := strictness[lc.Status]; !ok {
			unreadable = append(unreadable, fmt.Sprintf("key %s: status %q is not active, deprecated or yanked", shortFP(a.Fingerprint), lc.Status))
			continue
		}
		stmts = append(stmts, &lcStatement{Lifecycle: lc, fp: a.Fingerprint, order: i, authority: authFPs[a.Fingerprint]})
	}
	if len(stmts) == 0 && len(ignored) == 0 && len(unreadable) == 0 {
		return nil, nil
	}
	// Newest wins within one signer; the authorities count as one signer.
	newestBy := map[string]*lcStatement{}
	for _, s := range stmts {
		k := s.fp
		if s.authority {
			k = ""
		}
		if cur := newestBy[k]; cur == nil || s.after(cur) {
			newestBy[k] = s
		}
	}
	var eff *lcStatement
	for _, s := range newestBy {
		if eff == nil || strictness[s.Status] > strictness[eff.Status] ||
			(strictness[s.Status] == strictness[eff.Status] && s.after(eff)) {
			eff = s
		}
	}
	c := Check{Name: CheckLifecycle}
	var out *Lifecycle
	if eff == nil {
		c.Passed, c.Reason = true, "active"
	} else {
		out = &Lifecycle{Status: eff.Status, Reason: eff.Reason, Successor: eff.Successor, Time: eff.Time, Signer: eff.fp, Authority: eff.authority}
		successor := ""
		if eff.Successor != "" {
			successor = "; use " + eff.Successor + " instead"
		}
		switch eff.Status {
		case "yanked":
			c.Passed = in.PinnedByDigest && !refusePinned
			switch {
			case c.Passed:
				c.Reason = "yanked (" + eff.Reason + "), allowed because it is pinned by digest" + successor
			case in.PinnedByDigest:
				c.Reason = "yanked: " + eff.Reason + successor + "; pinned by digest, but the policy refuses yanked versions even when pinned (lifecycle.refusePinnedYanked)"
			default:
				c.Reason = "yanked: " + eff.Reason + successor
			}
		case "deprecated":
			c.Passed = allowDeprecated
			if c.Passed {
				c.Reason = "deprecated (" + eff.Reason + "), allowed by policy" + successor
			} else {
				c.Reason = "deprecated: " + eff.Reason + successor
			}
		default:
			c.Passed, c.Reason = true, "active"
		}
		c.Reason += " (" + eff.describe() + ")" + overruled(eff, stmts, authNames)
	}
	c.Reason += ignoredNote("lifecycle", ignored)
	if len(unreadable) > 0 {
		// A trusted key said something about this version that cannot be
		// read: it may be a yank, so fail closed.
		c.Passed = false
		c.Reason += "; unreadable lifecycle statement(s) by trusted keys (" + strings.Join(unreadable, "; ") + ")"
	}
	if len(authNames) > 0 {
		c.Reason += sc.rootNote(notCounting)
	}
	return out, []Check{c}
}

func (s *lcStatement) describe() string {
	who := "key " + shortFP(s.fp)
	if s.authority {
		who = "lifecycle authority key " + shortFP(s.fp)
	}
	if s.Time.IsZero() {
		return "stated by " + who
	}
	return "stated by " + who + " at " + s.Time.Format(time.RFC3339)
}

// overruled says which later, laxer statements did not lift the deciding
// one, and who could have.
func overruled(eff *lcStatement, stmts []*lcStatement, authNames []string) string {
	var later []string
	for _, s := range stmts {
		if s.after(eff) && strictness[s.Status] < strictness[eff.Status] {
			later = append(later, s.Status+" "+s.describe())
		}
	}
	if len(later) == 0 {
		return ""
	}
	who := "only a later statement by the same key can"
	if eff.authority {
		who = "only a lifecycle authority (" + strings.Join(authNames, ", ") + ") can"
	}
	return fmt.Sprintf("; later statement(s) do not lift it (%s): %s", who, strings.Join(later, "; "))
}

// attestThreshold is an attestation requirement with a threshold: each
// distinct key of the roots counts by its own newest valid statement of
// the type, and the check passes when at least a.threshold of those
// statements are valid predicates satisfying the condition. One key
// approving twice is one approval; a key's later rejection withdraws its
// own approval, not another key's.
func (p *Policy) attestThreshold(a *attestReq, in Input, res *signing.Result, sc *scope, rule string) Check {
	fps, expired := p.rootKeys(a.roots, sc.valid)
	short := signing.ShortName(a.typ)
	c := Check{Name: CheckAttestation(a.typ), Rule: rule}
	bySigner := map[string]*signing.Result{}
	var ignored []string
	for _, at := range res.Attestations {
		if !at.Verified || at.PredicateType != a.typ || !fps[at.Fingerprint] {
			continue
		}
		if field, when, future := signing.FutureDated(at.Statement, sc.now); future {
			ignored = append(ignored, futureNote(at.Fingerprint, field, when))
			continue
		}
		if bySigner[at.Fingerprint] == nil {
			bySigner[at.Fingerprint] = &signing.Result{}
		}
		bySigner[at.Fingerprint].Attestations = append(bySigner[at.Fingerprint].Attestations, at)
	}
	signers := make([]string, 0, len(bySigner))
	for fp := range bySigner {
		signers = append(signers, fp)
	}
	sort.Strings(signers)
	var yes, no []string
	for _, fp := range signers {
		latest := bySigner[fp].Latest(a.typ)
		if latest == nil || latest.Statement == nil {
			continue
		}
		who := shortFP(fp) + describe(latest)
		if err := signing.ValidatePredicate(a.typ, latest.Statement.Predicate); err != nil {
			no = append(no, who+": not a valid "+short+" predicate")
			continue
		}
		if a.prog == nil {
			yes = append(yes, who)
			continue
		}
		ok, err := evalCEL(a.prog, latest.Statement.Predicate, latest.Statement, in.Extension)
		switch {
		case err != nil:
			no = append(no, who+": "+err.Error())
		case ok:
			yes = append(yes, who)
		default:
			no = append(no, who+": fails the condition")
		}
	}
	c.Passed = len(yes) >= a.threshold
	what := short + " attestation(s)"
	if a.cond != "" {
		what += " satisfying " + a.cond
	}
	c.Reason = fmt.Sprintf("%d of %d needed distinct keys of %s made %s", len(yes), a.threshold, strings.Join(a.roots, ", "), what)
	if len(yes) > 0 {
		c.Reason += " (" + strings.Join(yes, "; ") + ")"
	}
	if len(no) > 0 {
		c.Reason += "; not counted: " + strings.Join(no, "; ")
	}
	if len(bySigner) == 0 {
		if n := countOfType(res, a.typ); n > 0 {
			c.Reason += fmt.Sprintf(" (%d found, none verifies with them)", n)
		}
	}
	c.Reason += ignoredNote(short, ignored) + sc.rootNote(expired)
	return c
}

// LicenseChecks are the licence checks of the rules that apply to in, as
// Evaluate makes them, for callers that judge a licence before anything
// is signed (the review pipeline). With no repository (a directory not
// pushed yet) every rule whose kinds fit applies, so a publisher is held
// to the strictest licence rule the stage could apply to it.
func (p *Policy) LicenseChecks(in Input) []Check {
	var out []Check
	for _, r := range p.rules {
		if r.spec.Licenses == nil {
			continue
		}
		if in.Repository == "" {
			if len(r.kinds) > 0 && (in.Extension == nil || !r.kinds[in.Extension.Kind]) {
				continue
			}
		} else if !r.matches(in) {
			continue
		}
		out = append(out, licenses(in, r.spec.Licenses, r.spec.Name))
	}
	return out
}
