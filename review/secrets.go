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
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
)

// secretScanner finds secrets with gitleaks' detector and its default rule
// set (private keys, cloud and SaaS tokens, passwords in configuration):
// a maintained rule set rather than patterns of our own. Its detector is
// safe for concurrent use once built; findings are redacted before they
// leave it, so a report never repeats a secret.
type secretScanner struct {
	// d scans everything; decoding finds secrets hidden in base64, hex or
	// percent-encoding too, but gitleaks' decoder costs 20 times a plain
	// scan (1.5 MB/s against 30–50 MB/s a core, measured), so only small
	// configuration files get it.
	d, decoding *detect.Detector
	// keywords are every rule's keywords (gitleaks' own prefilter): a
	// rule's expression can only match near one of its keywords, so only
	// the lines around keyword hits are handed to the detector, instead of
	// whole pieces. Go's regexp runs gitleaks' generic-api-key expression at
	// about 1 MB/s, and "key", "token", "auth" or "password" appear in most
	// source files.
	keywords *ahocorasick.Trie
}

// keywordContext is how many lines around a keyword hit are scanned: the
// rules' expressions match within a line, with whitespace and quotes at
// most around it.
const keywordContext = 2

// maxKeyLines bounds how far a "-----BEGIN" window reaches for its
// "-----END": a 16384-bit RSA key in PEM is about 200 lines.
const maxKeyLines = 400

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
		d.Redact = 100
		dec := detect.NewDetector(d.Config)
		dec.Redact = 100
		dec.MaxDecodeDepth = 1
		var kws []string
		for k := range d.Config.Keywords {
			kws = append(kws, strings.ToLower(k))
		}
		scanner = &secretScanner{d: d, decoding: dec, keywords: ahocorasick.NewTrieBuilder().AddStrings(kws).Build()}
	})
	return scanner, scannerErr
}

// scan reports the secrets in data, a piece of the file at path that
// starts at line startLine (1-based).
func (s *secretScanner) scan(ctx context.Context, path string, data []byte, startLine int) []Finding {
	if len(data) <= maxDecodeSize && decodeExtensions[strings.ToLower(filepath.Ext(path))] {
		// Encoded secrets carry no keyword until decoded: the whole file.
		return s.detect(ctx, s.decoding, path, data, startLine)
	}
	var out []Finding
	for _, w := range s.windows(data) {
		out = append(out, s.detect(ctx, s.d, path, data[w.from:w.to], startLine+w.line)...)
	}
	if startLine == 1 {
		// Rules on the file name alone (pkcs12-file) need no content.
		out = append(out, s.detect(ctx, s.d, path, nil, startLine)...)
	}
	return out
}

// window is a run of whole lines of a piece: bytes [from, to), starting at
// 0-based line line.
type window struct{ from, to, line int }

// windows are the lines around every keyword hit in data, merged; a
// "-----begin" hit reaches to its "-----end" line.
func (s *secretScanner) windows(data []byte) []window {
	lower := make([]byte, len(data))
	for i, c := range data {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	hits := s.keywords.Match(lower)
	if len(hits) == 0 {
		return nil
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
	lineStart := func(l int) int {
		if l <= 0 {
			return 0
		}
		return min(nl[min(l, len(nl))-1]+1, len(data))
	}
	lineEnd := func(l int) int {
		if l >= len(nl) {
			return len(data)
		}
		return nl[l] + 1
	}
	type lines struct{ first, last int }
	var runs []lines
	for _, h := range hits { // in order of position
		pos := int(h.Pos())
		l := lineOf(pos)
		r := lines{max(l-keywordContext, 0), l + keywordContext}
		if string(h.Match()) == "-----begin" {
			if k := bytes.Index(lower[pos:], []byte("-----end")); k >= 0 {
				r.last = max(r.last, min(lineOf(pos+k)+1, l+maxKeyLines))
			}
		}
		if n := len(runs); n > 0 && r.first <= runs[n-1].last+1 {
			runs[n-1].last = max(runs[n-1].last, r.last)
			continue
		}
		runs = append(runs, r)
	}
	out := make([]window, len(runs))
	for i, r := range runs {
		out[i] = window{from: lineStart(r.first), to: lineEnd(r.last), line: r.first}
	}
	return out
}

// detect runs d on one fragment starting at line startLine.
func (s *secretScanner) detect(ctx context.Context, d *detect.Detector, path string, data []byte, startLine int) []Finding {
	var out []Finding
	//lint:ignore SA1019 DetectContext takes this type until gitleaks v9
	frag := detect.Fragment{Raw: string(data), FilePath: path}
	for _, f := range d.DetectContext(ctx, frag) {
		sev := High
		if strings.Contains(f.RuleID, "private-key") || strings.HasPrefix(f.RuleID, "aws-") || strings.HasPrefix(f.RuleID, "gcp-") || strings.HasPrefix(f.RuleID, "azure-") {
			sev = Critical
		}
		desc := f.Description
		if desc == "" {
			desc = f.RuleID
		}
		out = append(out, Finding{
			Severity: sev,
			File:     path,
			Line:     startLine + f.StartLine,
			Rule:     f.RuleID,
			Message:  fmt.Sprintf("secret found (gitleaks rule %s): %s; remove it from the content and revoke it, since anyone who pulled this version has it", f.RuleID, desc),
		})
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
