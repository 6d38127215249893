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

// Match returns the advisories that affect pkg at its version.
func (db *OSVDB) Match(pkg Package) []*Advisory {
	var out []*Advisory
	k := keyOf(pkg.Ecosystem, pkg.Name)
	for _, a := range db.byPackage[k] {
		for _, af := range a.Affected {
			if keyOf(af.Package.Ecosystem, af.Package.Name) == k && af.Affects(pkg.Version) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// Affects says whether version lies in the affected versions: listed
// explicitly, or inside a SEMVER or ECOSYSTEM range (events in order:
// introduced opens, fixed or limit closes before, last_affected closes
// after). GIT ranges name commits and never match a version.
func (af *Affected) Affects(version string) bool {
	if slices.Contains(af.Versions, version) || slices.Contains(af.Versions, strings.TrimPrefix(version, "v")) {
		return true
	}
	v, err := parseVersion(version)
	if err != nil {
		return false
	}
	for _, r := range af.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue
		}
		// OSV does not require the events in order: its evaluation
		// sorts them by version first ("0" lowest), then walks them.
		type event struct {
			kind byte // 'i'ntroduced, 'f'ixed or limit, 'l'ast_affected
			v    *semver.Version
		}
		var evs []event
		for _, e := range r.Events {
			var k byte
			s := ""
			switch {
			case e.Introduced != "":
				k, s = 'i', e.Introduced
			case e.Fixed != "":
				k, s = 'f', e.Fixed
			case e.Limit != "":
				k, s = 'f', e.Limit
			case e.LastAffected != "":
				k, s = 'l', e.LastAffected
			default:
				continue
			}
			if s == "0" {
				evs = append(evs, event{k, nil})
			} else if ev, err := parseVersion(s); err == nil {
				evs = append(evs, event{k, ev})
			}
		}
		slices.SortStableFunc(evs, func(a, b event) int {
			switch {
			case a.v == nil && b.v == nil:
				return 0
			case a.v == nil:
				return -1
			case b.v == nil:
				return 1
			}
			return a.v.Compare(b.v)
		})
		in := false
		for _, e := range evs {
			switch e.kind {
			case 'i':
				if e.v == nil || !v.LessThan(e.v) {
					in = true
				}
			case 'f':
				if e.v == nil || !v.LessThan(e.v) {
					in = false
				}
			case 'l':
				if e.v == nil || v.GreaterThan(e.v) {
					in = false
				}
			}
		}
		if in {
			return true
		}
	}
	return false
}

// parseVersion reads a SemVer version, with Go's leading v and the short
// forms (1.2) that npm and PyPI releases use.
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
	found := 0
	for _, pk := range pkgs {
		for _, a := range db.Match(pk) {
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
}
