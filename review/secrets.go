package review

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

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
}

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
		scanner = &secretScanner{d: d, decoding: dec}
	})
	return scanner, scannerErr
}

// scan reports the secrets in data, a piece of the file at path that
// starts at line startLine (1-based).
func (s *secretScanner) scan(ctx context.Context, path string, data []byte, startLine int) []Finding {
	var out []Finding
	d := s.d
	if len(data) <= maxDecodeSize && decodeExtensions[strings.ToLower(filepath.Ext(path))] {
		d = s.decoding
	}
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
