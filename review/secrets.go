package review

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
	"github.com/h2non/filetype"
	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
)

// secretScanner finds secrets with gitleaks' detector and its default rule
// set (private keys, cloud and SaaS tokens, passwords in configuration):
// a maintained rule set rather than patterns of our own. Its detectors are
// safe for concurrent use once built; findings are redacted before they
// leave it, so a report never repeats a secret.
type secretScanner struct {
	// d holds every rule: it scans pieces whole when the windows below
	// cannot stand in for it (see foldsToASCII). decoding finds secrets
	// hidden in base64, hex or percent-encoding too, but gitleaks' decoder
	// costs 20 times a plain scan (1.5 MB/s against 30–50 MB/s a core,
	// measured), so only small configuration files get it.
	d, decoding *detect.Detector
	// rest holds every rule but generic-api-key, generic that rule alone
	// (nil when gitleaks' expression is not the one genericCandidate was
	// derived from: rest then holds every rule). Their secrets are kept
	// until gitleaks' own precedence rule between them has been applied
	// (dropGenericShadowed), then only rule and line leave the scanner.
	rest, generic *detect.Detector
	// keywords are every rule's keywords (gitleaks' own prefilter): a
	// rule's expression can only match near one of its keywords, so only
	// the lines around keyword hits are handed to the detectors, instead of
	// whole pieces. Go's regexp runs gitleaks' generic-api-key expression at
	// about 1 MB/s, and "key", "token", "auth" or "password" appear in most
	// source files.
	keywords *ahocorasick.Trie
	// restKeyword are, for each keyword, the rules of rest that have it;
	// genericKeyword says whether generic-api-key has it (some keywords,
	// like "secret", are both).
	restKeyword    map[string][]*restRule
	genericKeyword map[string]bool
	// pathRules are the rules of rest that apply to some files only.
	pathRules []*restRule
	// pathAllowlists are the global allowlists that skip files by path,
	// checked once a piece: rest and generic have them without their
	// paths, since gitleaks checks the path of every fragment, and a
	// piece can be hundreds of windows (a second of CPU in 100 MiB of
	// source, measured).
	pathAllowlists []*config.Allowlist
	// pathOnly are the rules on the file name alone (pkcs12-file).
	pathOnly map[string]bool
}

// keywordContext is the fewest lines around a keyword hit that are
// scanned; a rule whose matches can span more lines gets them all.
const keywordContext = 2

// decodeExtensions are the configuration files scanned with decoding:
// where an encoded secret usually sits (a Kubernetes Secret, a .env).
var decodeExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true, ".env": true, ".properties": true,
	".ini": true, ".toml": true, ".conf": true, ".cfg": true, ".xml": true, ".tf": true, ".tfvars": true}

// maxDecodeSize is the largest configuration file scanned with decoding.
const maxDecodeSize = 256 << 10

var (
	scannerOnce sync.Once
	scanner     *secretScanner
	scannerErr  error
)

// defaultSecretScanner builds the detector on first use: gitleaks compiles
// a few hundred regular expressions, which no mkt command but review
// check should pay for at start-up.
func defaultSecretScanner() (*secretScanner, error) {
	scannerOnce.Do(func() {
		// gitleaks logs to stderr at info level; the report says what it found.
		logging.Logger = logging.Logger.Level(zerolog.Disabled)
		d, err := detect.NewDetectorDefaultConfig()
		if err != nil {
			scannerErr = fmt.Errorf("load gitleaks' default rules: %w", err)
			return
		}
		scanner = newSecretScanner(d.Config)
	})
	return scanner, scannerErr
}

// newSecretScanner builds the scanner's detectors from one rule set.
func newSecretScanner(cfg config.Config) *secretScanner {
	d := detect.NewDetector(cfg)
	d.Redact = 100
	dec := detect.NewDetector(cfg)
	dec.Redact = 100
	dec.MaxDecodeDepth = 1
	s := &secretScanner{d: d, decoding: dec, rest: d, restKeyword: map[string][]*restRule{}, genericKeyword: map[string]bool{}, pathOnly: map[string]bool{}}
	restRules := map[string]config.Rule{}
	for id, r := range cfg.Rules {
		if r.Regex == nil && r.Path != nil {
			s.pathOnly[id] = true
		}
		if id == genericRuleID && r.Regex != nil && r.Regex.String() == genericPattern && r.Path == nil && len(r.RequiredRules) == 0 && sameWords(r.Keywords, genericKeywords) {
			gcfg := cfg
			gcfg.Rules = map[string]config.Rule{id: r}
			gcfg.Keywords = keywordSet(r.Keywords)
			s.generic = detect.NewDetector(gcfg)
			for _, k := range r.Keywords {
				s.genericKeyword[strings.ToLower(k)] = true
			}
			continue
		}
		restRules[id] = r
		rr := &restRule{pathIndex: -1, reach: -1}
		if r.Regex != nil {
			rr.reach = maxNewlines(r.Regex.String())
		}
		if r.Path != nil {
			rr.path, rr.pathIndex = r.Path, len(s.pathRules)
			s.pathRules = append(s.pathRules, rr)
		}
		if h, ok := hitConditions[id]; ok && r.Regex != nil && r.Regex.String() == h.pattern {
			rr.cond = h.cond
		}
		for _, k := range r.Keywords {
			s.restKeyword[strings.ToLower(k)] = append(s.restKeyword[strings.ToLower(k)], rr)
		}
	}
	if s.generic != nil {
		var lists []*config.Allowlist
		lists, s.pathAllowlists = withoutPaths(cfg.Allowlists)
		s.generic.Config.Allowlists = lists
		rcfg := cfg
		rcfg.Allowlists = lists
		rcfg.Rules = restRules
		rcfg.Keywords = map[string]struct{}{}
		for k := range s.restKeyword {
			rcfg.Keywords[k] = struct{}{}
		}
		s.rest = detect.NewDetector(rcfg)
	}
	var kws []string
	for k := range cfg.Keywords {
		kws = append(kws, strings.ToLower(k))
	}
	s.keywords = ahocorasick.NewTrieBuilder().AddStrings(kws).Build()
	return s
}

// withoutPaths splits global allowlists: the ones that skip files by path
// whatever else they say (the "OR" ones with paths), and all of them
// without those paths, for detectors that are handed only files that
// none of the former skip.
func withoutPaths(lists []*config.Allowlist) (rest, byPath []*config.Allowlist) {
	for _, a := range lists {
		if a.MatchCondition != config.AllowlistMatchOr || len(a.Paths) == 0 {
			rest = append(rest, a)
			continue
		}
		byPath = append(byPath, a)
		na := &config.Allowlist{Description: a.Description, MatchCondition: a.MatchCondition, Commits: a.Commits,
			RegexTarget: a.RegexTarget, Regexes: a.Regexes, StopWords: a.StopWords}
		if na.Validate() == nil { // an error: paths only, nothing left
			rest = append(rest, na)
		}
	}
	return rest, byPath
}

// pathAllowed says whether a global allowlist skips the file at path.
func (s *secretScanner) pathAllowed(path string) bool {
	for _, a := range s.pathAllowlists {
		if a.PathAllowed(path) {
			return true
		}
	}
	return false
}

func keywordSet(words []string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range words {
		m[strings.ToLower(w)] = struct{}{}
	}
	return m
}

// sameWords says whether a and b hold the same words, in any order and case.
func sameWords(a, b []string) bool {
	ma, mb := keywordSet(a), keywordSet(b)
	if len(ma) != len(mb) {
		return false
	}
	for w := range ma {
		if _, ok := mb[w]; !ok {
			return false
		}
	}
	return true
}

// rawFinding is a finding before it leaves the scanner: its secret is
// still there, for gitleaks' precedence rule between rules.
type rawFinding struct {
	rule, description, secret string
	line                      int // in the file, 1-based
}

// scan reports the secrets in data, a piece of the file at path that
// starts at line startLine (1-based): what gitleaks' detector finds in the
// piece, read whole (FuzzSecretScan compares them).
func (s *secretScanner) scan(ctx context.Context, path string, data []byte, startLine int) []Finding {
	var raw []rawFinding
	switch {
	case len(data) <= maxDecodeSize && decodeExtensions[strings.ToLower(filepath.Ext(path))]:
		// Encoded secrets carry no keyword until decoded: the whole file.
		raw = s.detect(ctx, s.decoding, path, data, startLine)
	case foldsToASCII(data):
		raw = s.detect(ctx, s.d, path, data, startLine)
	case s.pathAllowed(path):
		// gitleaks skips the file.
	default:
		rest, generic := s.windows(path, data)
		for _, w := range rest {
			raw = append(raw, s.detect(ctx, s.rest, path, data[w.from:w.to], startLine+w.line)...)
		}
		if len(generic) > 0 {
			var g []rawFinding
			for _, w := range generic {
				g = append(g, s.detect(ctx, s.generic, path, data[w.from:w.to], startLine+w.line)...)
			}
			raw = append(raw, dropGenericShadowed(g, raw)...)
		}
	}
	if startLine == 1 {
		// Rules on the file name alone (pkcs12-file) need no content.
		raw = append(raw, s.detect(ctx, s.d, path, nil, startLine)...)
	}
	out := make([]Finding, 0, len(raw))
	for _, f := range raw {
		if s.pathOnly[f.rule] && (f.line != startLine || startLine != 1) {
			continue // found again in a later piece, or with content: once per file
		}
		sev := High
		if strings.Contains(f.rule, "private-key") || strings.HasPrefix(f.rule, "aws-") || strings.HasPrefix(f.rule, "gcp-") || strings.HasPrefix(f.rule, "azure-") {
			sev = Critical
		}
		desc := f.description
		if desc == "" {
			desc = f.rule
		}
		out = append(out, Finding{
			Severity: sev,
			File:     path,
			Line:     f.line,
			Rule:     f.rule,
			Message:  fmt.Sprintf("secret found (gitleaks rule %s): %s; remove it from the content and revoke it, since anyone who pulled this version has it", f.rule, desc),
		})
	}
	return out
}

// dropGenericShadowed applies gitleaks' precedence rule to findings of the
// generic rule made by a detector of their own: a generic finding is
// dropped when a specific rule found a secret on the same line that
// contains it (gitleaks' filter does this within one detection).
func dropGenericShadowed(generic, specific []rawFinding) []rawFinding {
	out := generic[:0]
	for _, g := range generic {
		shadowed := false
		for _, f := range specific {
			if f.line == g.line && f.rule != g.rule && !strings.Contains(strings.ToLower(f.rule), "generic") && strings.Contains(f.secret, g.secret) {
				shadowed = true
				break
			}
		}
		if !shadowed {
			out = append(out, g)
		}
	}
	return out
}

// restRule is what a keyword hit needs to know of one of rest's rules:
// whether the rule applies to the file at all (gitleaks runs a rule with a
// path only on the files it names), and whether a match can use the hit.
type restRule struct {
	path interface{ MatchString(string) bool }
	// pathIndex is the rule's place in pathRules, or -1.
	pathIndex int
	// reach is the most lines a match can span beyond the line of its
	// keyword, either way (maxNewlines), or -1 without a bound.
	reach int
	// cond, by keyword, is a necessary condition for a match that uses
	// the keyword ending at end of lower; a keyword without one always
	// can.
	cond map[string]func(lower []byte, end int) bool
}

// hitConditions are necessary conditions for two rules whose keywords are
// in most source files ("ey" in "key" and "they", "s." after every
// receiver called s), keyed by rule and pinned to the expression they were
// derived from: a rule whose expression changes gets none.
var hitConditions = map[string]struct {
	pattern string
	cond    map[string]func(lower []byte, end int) bool
}{
	// ey, then 17 or more of [a-zA-Z0-9].
	"jwt": {`\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9\/\\_-]{17,}\.(?:[a-zA-Z0-9\/\\_-]{10,}={0,2})?)(?:[\x60'"\s;]|\\[nr]|$)`,
		map[string]func([]byte, int) bool{"ey": runOf(17, alnum)}},
	// hvs. and 90 of [\w-], or s. and 24 of [a-zA-Z0-9].
	"vault-service-token": {`\b((?:hvs\.[\w-]{90,120}|s\.(?i:[a-z0-9]{24})))(?:[\x60'"\s;]|\\[nr]|$)`,
		map[string]func([]byte, int) bool{"hvs.": runOf(90, func(c byte) bool { return alnum(c) || c == '_' || c == '-' }), "s.": runOf(24, alnum)}},
}

func alnum(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' }

// runOf is the condition that n bytes of class follow the keyword.
func runOf(n int, class func(byte) bool) func([]byte, int) bool {
	return func(lower []byte, end int) bool {
		if end+n > len(lower) {
			return false
		}
		for _, c := range lower[end : end+n] {
			if !class(c) {
				return false
			}
		}
		return true
	}
}

// needsWindow says how many lines either side of a hit of keyword kw,
// ending at end, the rules of rest that apply to the file (pathLive says
// which of pathRules do) and can use the hit need: -1 for the whole piece,
// and ok false if none can.
func (s *secretScanner) needsWindow(kw string, lower []byte, end int, pathLive []bool) (reach int, ok bool) {
	for _, r := range s.restKeyword[kw] {
		if r.pathIndex >= 0 && !pathLive[r.pathIndex] {
			continue
		}
		if c := r.cond[kw]; c != nil && !c(lower, end) {
			continue
		}
		if !ok || reach >= 0 && (r.reach < 0 || r.reach > reach) {
			reach = r.reach
		}
		ok = true
	}
	return max(reach, -1), ok
}

// window is a run of whole lines of a piece: bytes [from, to), starting at
// 0-based line line.
type window struct{ from, to, line int }

// windows are the lines of data to scan: for the rules but generic-api-key
// (rest), the lines around every keyword hit that one of them can use, as
// many either side as its expression can span (two at least; the whole
// piece for an expression without a bound, like a private key's), merged;
// for generic-api-key, the lines from
// each of its keywords that genericCandidate lets through to the line
// where the value can start, merged. Windows are made of whole lines and
// hold every line a match can touch, so gitleaks finds in them what it
// finds in data.
func (s *secretScanner) windows(path string, data []byte) (rest, generic []window) {
	lower := make([]byte, len(data))
	for i, c := range data {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	hits := s.keywords.Match(lower)
	if len(hits) == 0 {
		return nil, nil
	}
	pathLive := make([]bool, len(s.pathRules))
	for i, r := range s.pathRules {
		pathLive[i] = r.path.MatchString(path)
	}
	var nl []int // offsets of '\n'
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			break
		}
		nl = append(nl, i+j)
		i += j + 1
	}
	lineOf := func(pos int) int { return sort.SearchInts(nl, pos) }
	type lines struct{ first, last int }
	var restRuns, genericRuns []lines
	add := func(runs []lines, r lines) []lines {
		// Hits come in order, but a later one can reach further back.
		for n := len(runs); n > 0 && r.first <= runs[n-1].last+1; n = len(runs) {
			r = lines{min(r.first, runs[n-1].first), max(r.last, runs[n-1].last)}
			runs = runs[:n-1]
		}
		return append(runs, r)
	}
	for _, h := range hits { // in order of position
		pos := int(h.Pos())
		kw := h.Match()
		l := -1
		if s.genericKeyword[string(kw)] {
			if last, ok := genericCandidate(lower, pos+len(kw)); ok {
				l = lineOf(pos)
				genericRuns = add(genericRuns, lines{l, lineOf(last)})
			}
		}
		reach, ok := s.needsWindow(string(kw), lower, pos+len(kw), pathLive)
		if !ok {
			continue
		}
		if l < 0 {
			l = lineOf(pos)
		}
		r := lines{0, len(nl)} // no bound: the whole piece
		if reach >= 0 {
			reach = max(reach, keywordContext)
			r = lines{max(l-reach, 0), l + reach}
		}
		restRuns = add(restRuns, r)
	}
	toWindows := func(runs []lines) []window {
		out := make([]window, len(runs))
		for i, r := range runs {
			from := 0
			if r.first > 0 {
				from = min(nl[min(r.first, len(nl))-1]+1, len(data))
			}
			to := len(data)
			if r.last < len(nl) {
				to = nl[r.last] + 1
			}
			out[i] = window{from: from, to: to, line: r.first}
		}
		return out
	}
	return toWindows(restRuns), toWindows(genericRuns)
}

// detect runs d on one fragment starting at line startLine.
func (s *secretScanner) detect(ctx context.Context, d *detect.Detector, path string, data []byte, startLine int) []rawFinding {
	var out []rawFinding
	//lint:ignore SA1019 DetectContext takes this type until gitleaks v9
	frag := detect.Fragment{Raw: string(data), FilePath: path}
	for _, f := range d.DetectContext(ctx, frag) {
		out = append(out, rawFinding{rule: f.RuleID, description: f.Description, secret: f.Secret, line: startLine + f.StartLine})
	}
	return out
}

// isText says whether a file whose content starts with head is text that
// gitleaks scans: not a known binary type (gitleaks skips "application/*"
// types) and no NUL byte in its first 8000 bytes (git's test).
func isText(head []byte) bool {
	h := head[:min(len(head), 8000)]
	for _, b := range h {
		if b == 0 {
			return false
		}
	}
	if t, err := filetype.Match(h); err == nil && t.MIME.Type == "application" {
		return false
	}
	return true
}
