package signing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/opencontainers/go-digest"
)

// Predicate types of the Marketplace (DESIGN §4). They are contract: stock
// `cosign verify-attestation --type <URI>` is run with them.
const (
	ReviewV1        = "https://connectsoft.io/marketplace/review/v1"
	CompatibilityV1 = "https://connectsoft.io/marketplace/compatibility/v1"
	TermsV1         = "https://connectsoft.io/marketplace/terms/v1"
	LifecycleV1     = "https://connectsoft.io/marketplace/lifecycle/v1"
)

// Standard predicate types that policy may require; accepted as short names.
const (
	SLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	SPDXV2            = "https://spdx.dev/Document"
	CycloneDXV1       = "https://cyclonedx.org/bom"
)

var shortNames = map[string]string{
	"review":          ReviewV1,
	"compatibility":   CompatibilityV1,
	"terms":           TermsV1,
	"lifecycle":       LifecycleV1,
	"slsaprovenance":  SLSAProvenanceV02,
	"slsaprovenance1": SLSAProvenanceV1,
	"spdxjson":        SPDXV2,
	"cyclonedx":       CycloneDXV1,
}

// PredicateType turns a short name (review, compatibility, terms,
// lifecycle, slsaprovenance, spdxjson, cyclonedx) or a URI into the
// predicate type URI.
func PredicateType(s string) (string, error) {
	if uri, ok := shortNames[s]; ok {
		return uri, nil
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		return s, nil
	}
	return "", fmt.Errorf("unknown attestation type %q: want review, compatibility, terms, lifecycle, slsaprovenance, spdxjson, cyclonedx or a predicate type URI", s)
}

// ShortName is the short name of a predicate type URI, or the URI itself.
func ShortName(uri string) string {
	for k, v := range shortNames {
		if v == uri && !strings.HasSuffix(k, "1") {
			return k
		}
	}
	return uri
}

// Review records the outcome of a security and quality review.
type Review struct {
	Reviewer string    `json:"reviewer"`
	Result   string    `json:"result"` // approved | rejected | revoked
	Level    string    `json:"level"`  // internal | enterprise | public
	Checks   []Check   `json:"checks,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	Notes    string    `json:"notes,omitempty"`
	Time     time.Time `json:"time"`
}

// Check is one automated check a review ran.
type Check struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Details string `json:"details,omitempty"`
}

// Finding is one thing a reviewer found.
type Finding struct {
	Severity string `json:"severity"` // info | low | medium | high | critical
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
}

// Compatibility certifies the Factory versions an extension was tested with.
type Compatibility struct {
	Constraint string       `json:"constraint"`
	Tested     []TestedWith `json:"tested"`
	Platforms  []string     `json:"platforms,omitempty"`
	Time       time.Time    `json:"time"`
}

// TestedWith is one Factory version and what testing against it showed.
type TestedWith struct {
	Factory string `json:"factory"`
	Result  string `json:"result"` // passed | failed
	Details string `json:"details,omitempty"`
}

// Terms are the licence and commercial terms an extension is offered under.
type Terms struct {
	License       string        `json:"license"`
	TermsURL      string        `json:"termsUrl,omitempty"`
	TermsDigest   string        `json:"termsDigest,omitempty"`
	Pricing       Pricing       `json:"pricing"`
	RevenueShare  *RevenueShare `json:"revenueShare,omitempty"`
	AgreementID   string        `json:"agreementId,omitempty"`
	EffectiveDate time.Time     `json:"effectiveDate"`
	Time          time.Time     `json:"time"`
}

// Pricing says how an extension is charged for.
type Pricing struct {
	Model    string  `json:"model"` // free | flat | per-seat | usage
	Price    float64 `json:"price,omitempty"`
	Currency string  `json:"currency,omitempty"` // ISO 4217
	Unit     string  `json:"unit,omitempty"`     // for usage pricing
}

// RevenueShare splits revenue between publisher and platform, in percent.
type RevenueShare struct {
	Publisher float64 `json:"publisher"`
	Platform  float64 `json:"platform"`
}

// Lifecycle marks a version active, deprecated or yanked.
type Lifecycle struct {
	Status    string    `json:"status"` // active | deprecated | yanked
	Reason    string    `json:"reason,omitempty"`
	Successor string    `json:"successor,omitempty"`
	Time      time.Time `json:"time"`
}

// PredicateError says what is wrong with a predicate, by field.
type PredicateError struct {
	Type     string
	Problems []string
}

func (e *PredicateError) Error() string {
	return fmt.Sprintf("invalid %s predicate: %s", ShortName(e.Type), strings.Join(e.Problems, "; "))
}

// NormalizePredicate checks a predicate of one of our types strictly
// (unknown fields, missing or invalid values) and returns it re-encoded,
// with "time" set to now when it was left out. Other types pass through
// unchanged once they are shown to be a JSON object.
func NormalizePredicate(predicateType string, raw []byte, now time.Time) ([]byte, error) {
	target, err := decodePredicate(predicateType, raw)
	if err != nil {
		return nil, err
	}
	if target == nil {
		return raw, nil
	}
	setTime(target, now)
	if problems := target.validate(); len(problems) > 0 {
		return nil, &PredicateError{Type: predicateType, Problems: problems}
	}
	return json.Marshal(target)
}

// ValidatePredicate checks a predicate as it was signed, whoever wrote it
// (mkt, stock cosign, another tool): one of our four types must decode
// strictly and pass the checks NormalizePredicate makes, with nothing
// filled in, so a statement without its time is invalid, as its JSON
// Schema (signing/schema, kept in agreement by a test) says. Other
// predicate types are not ours to judge and pass. The error is a
// *PredicateError naming each field at fault.
//
// The Go checks stand in for the schemas at run time: a JSON Schema
// library's package initialisation alone cost every mkt command several
// milliseconds and 1.7 MB at start-up.
func ValidatePredicate(predicateType string, raw []byte) error {
	target, err := decodePredicate(predicateType, raw)
	if err != nil || target == nil {
		return err
	}
	var problems []string
	if predicateTime(target).IsZero() {
		problems = append(problems, "time is required (when the statement was made, RFC 3339)")
	}
	problems = append(problems, target.validate()...)
	if len(problems) > 0 {
		return &PredicateError{Type: predicateType, Problems: problems}
	}
	return nil
}

// predicate is one of our predicate types, decoded.
type predicate interface{ validate() []string }

// decodePredicate decodes one of our predicate types strictly (unknown
// fields, trailing data, times that are not RFC 3339); it returns nil and
// no error for a type that is not ours but is a JSON object.
func decodePredicate(predicateType string, raw []byte) (predicate, error) {
	var target predicate
	switch predicateType {
	case ReviewV1:
		target = &Review{}
	case CompatibilityV1:
		target = &Compatibility{}
	case TermsV1:
		target = &Terms{}
	case LifecycleV1:
		target = &Lifecycle{}
	default:
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, &PredicateError{Type: predicateType, Problems: []string{"not a JSON object: " + err.Error()}}
		}
		return nil, nil
	}
	if problems := timeProblems(raw); len(problems) > 0 {
		return nil, &PredicateError{Type: predicateType, Problems: problems}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return nil, &PredicateError{Type: predicateType, Problems: []string{err.Error()}}
	}
	if dec.More() {
		return nil, &PredicateError{Type: predicateType, Problems: []string{"trailing data after the JSON object"}}
	}
	return target, nil
}

// predicateTime is the time a decoded predicate states.
func predicateTime(p predicate) time.Time {
	switch v := p.(type) {
	case *Review:
		return v.Time
	case *Compatibility:
		return v.Time
	case *Terms:
		return v.Time
	case *Lifecycle:
		return v.Time
	}
	return time.Time{}
}

// timeFields are the date-time fields of our predicate types.
var timeFields = []string{"effectiveDate", "time"}

// timeProblems names each date-time field that is not RFC 3339: decoding
// would otherwise fail with Go's time-parse error, which names neither the
// field nor the format wanted.
func timeProblems(raw []byte) []string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil // the strict decoding says what is wrong
	}
	var out []string
	for _, f := range timeFields {
		v, ok := obj[f]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			out = append(out, fmt.Sprintf("%s: %s is not a date-time string: want RFC 3339, such as 2026-01-01T00:00:00Z", f, v))
			continue
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			out = append(out, fmt.Sprintf("%s %q is not a date-time: want RFC 3339, such as 2026-01-01T00:00:00Z", f, s))
		}
	}
	return out
}

func setTime(p any, now time.Time) {
	now = now.UTC().Truncate(time.Second)
	switch v := p.(type) {
	case *Review:
		if v.Time.IsZero() {
			v.Time = now
		}
	case *Compatibility:
		if v.Time.IsZero() {
			v.Time = now
		}
	case *Terms:
		if v.Time.IsZero() {
			v.Time = now
		}
	case *Lifecycle:
		if v.Time.IsZero() {
			v.Time = now
		}
	}
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (r *Review) validate() []string {
	var p []string
	if r.Reviewer == "" {
		p = append(p, "reviewer is required")
	}
	if !oneOf(r.Result, "approved", "rejected", "revoked") {
		p = append(p, fmt.Sprintf("result %q: want approved, rejected or revoked", r.Result))
	}
	if !oneOf(r.Level, "internal", "enterprise", "public") {
		p = append(p, fmt.Sprintf("level %q: want internal, enterprise or public", r.Level))
	}
	for i, c := range r.Checks {
		if c.Name == "" {
			p = append(p, fmt.Sprintf("checks[%d].name is required", i))
		}
	}
	for i, f := range r.Findings {
		if !oneOf(f.Severity, "info", "low", "medium", "high", "critical") {
			p = append(p, fmt.Sprintf("findings[%d].severity %q: want info, low, medium, high or critical", i, f.Severity))
		}
		if f.Message == "" {
			p = append(p, fmt.Sprintf("findings[%d].message is required", i))
		}
	}
	return p
}

func (c *Compatibility) validate() []string {
	var p []string
	if _, err := semver.NewConstraint(c.Constraint); err != nil {
		p = append(p, fmt.Sprintf("constraint %q is not a semver constraint", c.Constraint))
	}
	if len(c.Tested) == 0 {
		p = append(p, "tested needs at least one Factory version")
	}
	for i, t := range c.Tested {
		if _, err := semver.StrictNewVersion(t.Factory); err != nil {
			p = append(p, fmt.Sprintf("tested[%d].factory %q is not a version", i, t.Factory))
		}
		if !oneOf(t.Result, "passed", "failed") {
			p = append(p, fmt.Sprintf("tested[%d].result %q: want passed or failed", i, t.Result))
		}
	}
	return p
}

func (t *Terms) validate() []string {
	var p []string
	if t.License == "" {
		p = append(p, "license is required")
	} else if ok, _ := spdxexp.ValidateLicenses([]string{t.License}); !ok {
		p = append(p, fmt.Sprintf("license %q is not an SPDX expression", t.License))
	}
	if t.TermsURL != "" {
		if u, err := url.Parse(t.TermsURL); err != nil || u.Scheme == "" || u.Host == "" {
			p = append(p, fmt.Sprintf("termsUrl %q is not an absolute URL", t.TermsURL))
		}
	}
	if t.TermsDigest != "" {
		if _, err := digest.Parse(t.TermsDigest); err != nil {
			p = append(p, fmt.Sprintf("termsDigest %q is not a digest (sha256:<hex>)", t.TermsDigest))
		}
	}
	switch t.Pricing.Model {
	case "free":
		if t.Pricing.Price != 0 {
			p = append(p, "pricing.price must be 0 for the free model")
		}
	case "flat", "per-seat", "usage":
		if t.Pricing.Price <= 0 {
			p = append(p, "pricing.price must be positive for a paid model")
		}
		if len(t.Pricing.Currency) != 3 || strings.ToUpper(t.Pricing.Currency) != t.Pricing.Currency {
			p = append(p, fmt.Sprintf("pricing.currency %q: want an ISO 4217 code such as EUR", t.Pricing.Currency))
		}
	default:
		p = append(p, fmt.Sprintf("pricing.model %q: want free, flat, per-seat or usage", t.Pricing.Model))
	}
	if rs := t.RevenueShare; rs != nil {
		if rs.Publisher < 0 || rs.Platform < 0 || math.Abs(rs.Publisher+rs.Platform-100) > 1e-9 {
			p = append(p, fmt.Sprintf("revenueShare %v+%v: the percentages must be non-negative and add up to 100", rs.Publisher, rs.Platform))
		}
	}
	if t.EffectiveDate.IsZero() {
		p = append(p, "effectiveDate is required")
	}
	return p
}

func (l *Lifecycle) validate() []string {
	var p []string
	if !oneOf(l.Status, "active", "deprecated", "yanked") {
		p = append(p, fmt.Sprintf("status %q: want active, deprecated or yanked", l.Status))
	}
	if l.Status != "active" && l.Reason == "" {
		p = append(p, "reason is required when a version is deprecated or yanked")
	}
	return p
}

// MaxClockSkew is how far in the future a statement's time may lie and
// still count. A statement dated later is invalid when it is evaluated: a
// key could otherwise date a statement in 2099 and win every "newest wins"
// comparison until then (a publisher's "active" outranking a security
// team's later yank). Five minutes absorbs ordinary clock drift between
// the signer and the verifier.
const MaxClockSkew = 5 * time.Minute

// FutureDated reports whether a statement carries a time more than
// MaxClockSkew after now: its predicate's "time" (every Marketplace
// predicate type has one) or, for terms, its "effectiveDate" (terms not
// yet in force do not count either). field names the offending field and
// at its value, for the message that says why the statement is ignored.
func FutureDated(st *Statement, now time.Time) (field string, at time.Time, future bool) {
	if st == nil {
		return "", time.Time{}, false
	}
	var p struct {
		Time          time.Time `json:"time"`
		EffectiveDate time.Time `json:"effectiveDate"`
	}
	// A predicate whose times do not parse has none to be in the future;
	// its own decoding (and the policy's check of it) reports the damage.
	_ = json.Unmarshal(st.Predicate, &p)
	limit := now.Add(MaxClockSkew)
	if p.Time.After(limit) {
		return "time", p.Time, true
	}
	if st.PredicateType == TermsV1 && p.EffectiveDate.After(limit) {
		return "effectiveDate", p.EffectiveDate, true
	}
	return "", time.Time{}, false
}

// NewReview is the review predicate a person signs with mkt review
// approve|reject: result approved or rejected at level (the stage), by
// reviewer, at now. It is validated as ValidatePredicate would the signed
// statement, so what is signed is what verifies.
func NewReview(reviewer, result, level, notes string, now time.Time) ([]byte, error) {
	return newPredicate(ReviewV1, &Review{Reviewer: reviewer, Result: result, Level: level, Notes: notes, Time: now.UTC().Truncate(time.Second)})
}

// NewLifecycle is the lifecycle predicate mkt deprecate and mkt yank sign:
// status deprecated or yanked, with the reason (required) and a successor
// version (optional), at now.
func NewLifecycle(status, reason, successor string, now time.Time) ([]byte, error) {
	return newPredicate(LifecycleV1, &Lifecycle{Status: status, Reason: reason, Successor: successor, Time: now.UTC().Truncate(time.Second)})
}

func newPredicate(predicateType string, p predicate) ([]byte, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := ValidatePredicate(predicateType, raw); err != nil {
		return nil, err
	}
	return raw, nil
}
