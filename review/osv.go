package review

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	pep440 "github.com/aquasecurity/go-pep440-version"
)

// Advisory is one OSV record (https://ossf.github.io/osv-schema/), the
// fields the matcher reads.
type Advisory struct {
	ID        string     `json:"id"`
	Summary   string     `json:"summary"`
	Aliases   []string   `json:"aliases"`
	Withdrawn string     `json:"withdrawn"`
	Affected  []Affected `json:"affected"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

// Affected is one package an advisory affects, by version ranges or an
// explicit version list.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges []struct {
		Type   string `json:"type"`
		Events []struct {
			Introduced   string `json:"introduced"`
			Fixed        string `json:"fixed"`
			LastAffected string `json:"last_affected"`
			Limit        string `json:"limit"`
		} `json:"events"`
	} `json:"ranges"`
	Versions []string `json:"versions"`
}

// ParseAdvisory decodes one OSV JSON record.
func ParseAdvisory(data []byte) (*Advisory, error) {
	var a Advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	if a.ID == "" {
		return nil, fmt.Errorf("no id: not an OSV record")
	}
	return &a, nil
}

// osvKey is an ecosystem and a package name as OSV spells them.
type osvKey struct{ ecosystem, name string }

func keyOf(ecosystem, name string) osvKey {
	// "PyPI" names compare normalised (PEP 503); an ecosystem may carry a
	// suffix ("Debian:12"), which none of ours does.
	eco, _, _ := strings.Cut(ecosystem, ":")
	if eco == "PyPI" {
		name = normalisePyPI(name)
	}
	return osvKey{eco, name}
}

func normalisePyPI(name string) string {
	name = strings.ToLower(name)
	return strings.NewReplacer("_", "-", ".", "-").Replace(name)
}

// OSVDB is an offline OSV database, indexed by package.
type OSVDB struct {
	byPackage map[osvKey][]*Advisory
	// Records counts the advisories read.
	Records int
}

// LoadOSV reads every *.json file under dir as an OSV record. A file that
// is not one is an error naming it: a damaged database must not pass as
// an empty one.
func LoadOSV(dir string, ecosystems map[string]bool) (*OSVDB, error) {
	db := &OSVDB{byPackage: map[osvKey][]*Advisory{}}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("OSV database: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("OSV database %s is not a directory (unpack osv.dev's all.zip into one)", dir)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".json") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		a, err := ParseAdvisory(data)
		if err != nil {
			return fmt.Errorf("OSV database: %s: %w", p, err)
		}
		db.Records++
		if a.Withdrawn != "" {
			return nil
		}
		for _, af := range a.Affected {
			k := keyOf(af.Package.Ecosystem, af.Package.Name)
			if ecosystems != nil && !ecosystems[k.ecosystem] {
				continue
			}
			if !slices.Contains(db.byPackage[k], a) {
				db.byPackage[k] = append(db.byPackage[k], a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Unordered is an advisory whose ranges a package's version could not be
// ordered against: neither matched nor cleared, so the check reports it
// rather than let the package pass as unaffected.
type Unordered struct {
	Advisory *Advisory
	Err      error
}

// Match returns the advisories that affect pkg at its version, and those
// it cannot tell because the version (or a range bound) is not one the
// ecosystem's version order reads.
func (db *OSVDB) Match(pkg Package) (affected []*Advisory, unordered []Unordered) {
	k := keyOf(pkg.Ecosystem, pkg.Name)
	for _, a := range db.byPackage[k] {
		var firstErr error
		hit := false
		for _, af := range a.Affected {
			if keyOf(af.Package.Ecosystem, af.Package.Name) != k {
				continue
			}
			ok, err := af.Evaluate(pkg.Version)
			if ok {
				hit = true
				break
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
		switch {
		case hit:
			affected = append(affected, a)
		case firstErr != nil:
			unordered = append(unordered, Unordered{a, firstErr})
		}
	}
	return affected, unordered
}

// Affects says whether version is known to lie in the affected versions
// (see Evaluate). A version that cannot be ordered against a range is not
// known to: Evaluate's error says so, and callers that decide must use it.
func (af *Affected) Affects(version string) bool {
	ok, _ := af.Evaluate(version)
	return ok
}

// Evaluate says whether version lies in the affected versions: listed
// explicitly, or inside a SEMVER or ECOSYSTEM range (events sorted by
// version as OSV's evaluation does, then walked: introduced opens, fixed
// or limit closes before, last_affected closes after). GIT ranges name
// commits and never match a version. Versions are ordered the package's
// ecosystem's way: PEP 440 for PyPI (2.31.0rc1 < 2.31.0 < 2.31.0.post1),
// SemVer for the others (Go's leading v, +incompatible and
// pseudo-versions, npm's pre-releases). When a range applies but the
// version or one of its bounds cannot be ordered, the result is false
// with an error naming what could not be read: not a verdict of
// "unaffected".
func (af *Affected) Evaluate(version string) (bool, error) {
	if slices.Contains(af.Versions, version) || slices.Contains(af.Versions, strings.TrimPrefix(version, "v")) {
		return true, nil
	}
	if eco, _, _ := strings.Cut(af.Package.Ecosystem, ":"); eco == "PyPI" {
		return evaluate(af, version, "PEP 440", pep440.Parse, pep440.Version.Compare)
	}
	return evaluate(af, version, "SemVer", parseVersion, (*semver.Version).Compare)
}

// rangeEvent is one OSV range event: kind is 'i'ntroduced, 'f'ixed (or
// limit) or 'l'ast_affected; zero is the "0" that precedes every version.
type rangeEvent[V any] struct {
	kind byte
	zero bool
	v    V
}

// evaluate is Evaluate's range walk in one version order.
func evaluate[V any](af *Affected, version, order string, parse func(string) (V, error), cmp func(V, V) int) (bool, error) {
	var (
		v       V
		vErr    error
		vParsed bool
		rngErr  error
	)
	for _, r := range af.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue
		}
		var evs []rangeEvent[V]
		bad := ""
		for _, e := range r.Events {
			var k byte
			s := ""
			switch {
			case e.Introduced != "":
				k, s = 'i', e.Introduced
			case e.Fixed != "":
				k, s = 'f', e.Fixed
			case e.Limit != "":
				if e.Limit == "*" { // no limit
					continue
				}
				k, s = 'f', e.Limit
			case e.LastAffected != "":
				k, s = 'l', e.LastAffected
			default:
				continue
			}
			if s == "0" {
				evs = append(evs, rangeEvent[V]{kind: k, zero: true})
				continue
			}
			ev, err := parse(s)
			if err != nil {
				bad = s
				break
			}
			evs = append(evs, rangeEvent[V]{kind: k, v: ev})
		}
		if len(evs) == 0 && bad == "" {
			continue
		}
		if !vParsed {
			vParsed = true
			v, vErr = parse(version)
		}
		if vErr != nil {
			// The version cannot be placed in any range: say so once.
			return false, fmt.Errorf("version %q is not a %s version", version, order)
		}
		if bad != "" {
			// Without one bound the range cannot be walked: skipping an
			// introduced would clear, skipping a fixed would widen.
			if rngErr == nil {
				rngErr = fmt.Errorf("range bound %q is not a %s version", bad, order)
			}
			continue
		}
		slices.SortStableFunc(evs, func(a, b rangeEvent[V]) int {
			switch {
			case a.zero && b.zero:
				return 0
			case a.zero:
				return -1
			case b.zero:
				return 1
			}
			return cmp(a.v, b.v)
		})
		in := false
		for _, e := range evs {
			switch e.kind {
			case 'i':
				if e.zero || cmp(v, e.v) >= 0 {
					in = true
				}
			case 'f':
				if e.zero || cmp(v, e.v) >= 0 {
					in = false
				}
			case 'l':
				if e.zero || cmp(v, e.v) > 0 {
					in = false
				}
			}
		}
		if in {
			return true, nil
		}
	}
	return false, rngErr
}

// parseVersion reads a SemVer version, with Go's leading v and the short
// forms (1.2) that npm releases use.
func parseVersion(s string) (*semver.Version, error) {
	return semver.NewVersion(strings.TrimPrefix(s, "v"))
}

// AdvisorySeverity is the severity of an advisory: GitHub's rating
// (database_specific.severity) when present, else the CVSS v3 base score
// of its vector, else high, since an advisory that does not rate itself
// is still a known vulnerability.
func (a *Advisory) AdvisorySeverity() Severity {
	switch strings.ToUpper(a.DatabaseSpecific.Severity) {
	case "CRITICAL":
		return Critical
	case "HIGH":
		return High
	case "MODERATE", "MEDIUM":
		return Medium
	case "LOW":
		return Low
	}
	for _, s := range a.Severity {
		if strings.HasPrefix(s.Type, "CVSS_V3") {
			if score, ok := CVSS3BaseScore(s.Score); ok {
				switch {
				case score >= 9:
					return Critical
				case score >= 7:
					return High
				case score >= 4:
					return Medium
				case score > 0:
					return Low
				default:
					return Info
				}
			}
		}
	}
	return High
}

// CVSS3BaseScore computes the base score of a CVSS v3.x vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), per the specification's
// formulas; ok is false for a vector it cannot read.
func CVSS3BaseScore(vector string) (float64, bool) {
	parts := strings.Split(vector, "/")
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "CVSS:3") {
		return 0, false
	}
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return 0, false
		}
		m[k] = v
	}
	pick := func(k string, vals map[string]float64) (float64, bool) {
		v, ok := vals[m[k]]
		return v, ok
	}
	scopeChanged := m["S"] == "C"
	av, ok1 := pick("AV", map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2})
	ac, ok2 := pick("AC", map[string]float64{"L": 0.77, "H": 0.44})
	prVals := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	if scopeChanged {
		prVals = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	}
	pr, ok3 := pick("PR", prVals)
	ui, ok4 := pick("UI", map[string]float64{"N": 0.85, "R": 0.62})
	cia := map[string]float64{"H": 0.56, "L": 0.22, "N": 0}
	c, ok5 := pick("C", cia)
	i, ok6 := pick("I", cia)
	a, ok7 := pick("A", cia)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || (m["S"] != "U" && m["S"] != "C") {
		return 0, false
	}
	iss := 1 - (1-c)*(1-i)*(1-a)
	var impact float64
	if scopeChanged {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	if impact <= 0 {
		return 0, true
	}
	exploit := 8.22 * av * ac * pr * ui
	var score float64
	if scopeChanged {
		score = roundUp(math.Min(1.08*(impact+exploit), 10))
	} else {
		score = roundUp(math.Min(impact+exploit, 10))
	}
	return score, true
}

// roundUp is CVSS 3.1's Roundup: the smallest one-decimal number >= x.
func roundUp(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// vulnerabilities matches the manifests' packages against the OSV
// database given, if any.
func (p *pass) vulnerabilities(pkgs []Package) {
	if p.o.OSVDir == "" {
		p.skipped[CheckVulnerabilities] = "no OSV database given (--osv-db DIR: osv.dev's all.zip, unpacked)"
		return
	}
	ecos := map[string]bool{}
	for _, pk := range pkgs {
		ecos[keyOf(pk.Ecosystem, pk.Name).ecosystem] = true
	}
	db, err := LoadOSV(p.o.OSVDir, ecos)
	if err != nil {
		p.add(CheckVulnerabilities, Finding{Severity: High, Message: "the OSV database cannot be read, so nothing was matched: " + oneLine(err.Error())})
		return
	}
	found, notOrdered := 0, 0
	for _, pk := range pkgs {
		affected, unordered := db.Match(pk)
		for _, u := range unordered {
			notOrdered++
			p.add(CheckVulnerabilities, Finding{
				Severity: Medium, File: pk.Manifest, Rule: u.Advisory.ID,
				Message: fmt.Sprintf("cannot compare %s %s %s with advisory %s's range (%s), so whether it is affected is unknown: pin a version the ecosystem orders, or check %s by hand", pk.Ecosystem, pk.Name, pk.Version, u.Advisory.ID, oneLine(u.Err.Error()), u.Advisory.ID),
			})
		}
		for _, a := range affected {
			found++
			what := a.Summary
			if len(a.Aliases) > 0 {
				what += " (" + strings.Join(a.Aliases, ", ") + ")"
			}
			p.add(CheckVulnerabilities, Finding{
				Severity: a.AdvisorySeverity(), File: pk.Manifest, Rule: a.ID,
				Message: fmt.Sprintf("%s %s %s is affected by %s: %s; upgrade to a fixed version", pk.Ecosystem, pk.Name, pk.Version, a.ID, strings.TrimSpace(what)),
			})
		}
	}
	p.summaries[CheckVulnerabilities] = fmt.Sprintf("%s checked against %s advisories: %s", plural(len(pkgs), "package"), strconv.Itoa(db.Records), fmt.Sprintf("%d known vulnerabilities", found))
	if notOrdered > 0 {
		p.summaries[CheckVulnerabilities] += fmt.Sprintf(", %d advisories whose ranges a version could not be compared with", notOrdered)
	}
}
