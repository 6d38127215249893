package review

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/signing"
)

// Reviewer is the reviewer the pipeline's review predicates name.
const Reviewer = "pipeline"

// Severity ranks a finding. The names are the review predicate's.
type Severity string

// Severities, from least to most severe.
const (
	Info     Severity = "info"
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

var severityRank = map[Severity]int{Info: 0, Low: 1, Medium: 2, High: 3, Critical: 4}

// AtLeast says whether s is as severe as o or more.
func (s Severity) AtLeast(o Severity) bool { return severityRank[s] >= severityRank[o] }

// ParseSeverity reads a severity name.
func ParseSeverity(s string) (Severity, error) {
	if _, ok := severityRank[Severity(s)]; ok {
		return Severity(s), nil
	}
	return "", fmt.Errorf("severity %q: want info, low, medium, high or critical", s)
}

// Status is how a check ended.
type Status string

// Check statuses. A skipped check could not run (no OSV database given, a
// directory has no attestations yet): it is never counted as passed.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Check names: the report's and the review predicate's. Stage policies
// and the index's review queue refer to them.
const (
	CheckDescriptor      = "descriptor"
	CheckLicense         = "license"
	CheckSecrets         = "secrets"
	CheckExecutables     = "executables"
	CheckLimits          = "limits"
	CheckDependencies    = "dependencies"
	CheckCompatibility   = "compatibility"
	CheckSBOM            = "sbom"
	CheckVulnerabilities = "vulnerabilities"
)

// checkOrder is the order checks are reported in.
var checkOrder = []string{CheckDescriptor, CheckLicense, CheckSecrets, CheckExecutables, CheckLimits,
	CheckDependencies, CheckCompatibility, CheckSBOM, CheckVulnerabilities}

// Finding is one thing a check found, located where it applies.
type Finding struct {
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// File is the path inside the extension ("" for the whole extension).
	File string `json:"file,omitempty"`
	// Line is 1-based, 0 when a line does not apply.
	Line int `json:"line,omitempty"`
	// Rule names what matched: a gitleaks rule, an OSV advisory id.
	Rule string `json:"rule,omitempty"`
}

// Location is "file:line", "file" or "".
func (f Finding) Location() string {
	if f.Line > 0 {
		return f.File + ":" + strconv.Itoa(f.Line)
	}
	return f.File
}

// CheckResult is one check of a report.
type CheckResult struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Summary says in a line what the check saw, or why it was skipped.
	Summary  string    `json:"summary"`
	Findings []Finding `json:"findings,omitempty"`
}

// Report is the outcome of one pipeline run. Its JSON (lowerCamelCase) is
// what `mkt review check --format json` prints.
type Report struct {
	// Target is what was checked: a directory or a reference as given.
	Target string `json:"target"`
	// Reference is repository@digest for a pushed artifact: what an
	// attestation of this report is about.
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Name      string `json:"name,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind,omitempty"`
	// Stage is the review level: internal, enterprise or public.
	Stage string `json:"stage"`
	// BlockAt is the least severity that rejects.
	BlockAt Severity `json:"blockAt"`
	// Result is approved or rejected (a finding at BlockAt or above).
	Result string `json:"result"`
	// Blocking counts the findings at BlockAt or above.
	Blocking int `json:"blocking"`
	// Files and Bytes are what was read.
	Files  int           `json:"files"`
	Bytes  int64         `json:"bytes"`
	Checks []CheckResult `json:"checks"`
	Time   time.Time     `json:"time"`
	// Attestations are what --attest signed.
	Attestations []*signing.Signed `json:"attestations,omitempty"`

	sbom []byte
}

// Approved says whether no finding blocks.
func (r *Report) Approved() bool { return r.Result == "approved" }

// Check returns the named check's result, or nil.
func (r *Report) Check(name string) *CheckResult {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// SBOM is the CycloneDX JSON document the run produced.
func (r *Report) SBOM() []byte { return r.sbom }

// maxPredicateFindings bounds the findings a predicate carries: a tree of
// ten thousand scripts makes ten thousand info findings, and an attestation
// is a registry blob every verifier downloads. The report keeps them all.
const maxPredicateFindings = 500

// Predicate is the review predicate (signing.ReviewV1) of this report:
// reviewer "pipeline", result, level = stage, every check (a skipped check
// is not passed; its details say why) and the findings, most severe first.
func (r *Report) Predicate() signing.Review {
	p := signing.Review{Reviewer: Reviewer, Result: r.Result, Level: r.Stage, Time: r.Time.UTC()}
	var all []Finding
	for _, c := range r.Checks {
		d := c.Summary
		if c.Status == Skipped {
			d = "skipped: " + d
		}
		p.Checks = append(p.Checks, signing.Check{Name: c.Name, Passed: c.Status == Passed, Details: d})
		all = append(all, c.Findings...)
	}
	sortBySeverity(all)
	dropped := 0
	for _, f := range all {
		if len(p.Findings) >= maxPredicateFindings {
			dropped++
			continue
		}
		p.Findings = append(p.Findings, signing.Finding{Severity: string(f.Severity), Message: f.Message, Location: f.Location()})
	}
	if dropped > 0 {
		p.Notes = fmt.Sprintf("%d less severe findings left out of this attestation; run mkt review check for all of them", dropped)
	}
	return p
}

// PredicateJSON is Predicate encoded and checked against the review
// predicate's schema rules (signing.ValidatePredicate).
func (r *Report) PredicateJSON() ([]byte, error) {
	b, err := json.Marshal(r.Predicate())
	if err != nil {
		return nil, err
	}
	if err := signing.ValidatePredicate(signing.ReviewV1, b); err != nil {
		return nil, fmt.Errorf("the pipeline's review predicate: %w", err)
	}
	return b, nil
}

// WriteText writes the report for people: the verdict, one line per check,
// and each finding under its check.
func (r *Report) WriteText(w io.Writer) {
	what := r.Target
	if r.Reference != "" {
		what = r.Reference
	}
	verdict := "APPROVED"
	if !r.Approved() {
		verdict = "REJECTED"
	}
	fmt.Fprintf(w, "%s %s", verdict, what)
	if r.Name != "" {
		fmt.Fprintf(w, " (%s %s)", r.Name, r.Version)
	}
	fmt.Fprintf(w, " for stage %s: %d blocking finding(s) at %s or above; %d files, %d bytes\n", r.Stage, r.Blocking, r.BlockAt, r.Files, r.Bytes)
	for _, c := range r.Checks {
		mark := map[Status]string{Passed: "ok  ", Failed: "FAIL", Skipped: "skip"}[c.Status]
		fmt.Fprintf(w, "%s %-15s %s\n", mark, c.Name, oneLine(c.Summary))
		for _, f := range c.Findings {
			loc := f.Location()
			if loc != "" {
				loc = " " + loc
			}
			fmt.Fprintf(w, "       %-8s%s: %s\n", f.Severity, loc, oneLine(f.Message))
		}
	}
}

// oneLine keeps a message that quotes content on one printable line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
