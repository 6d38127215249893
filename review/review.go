package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"golang.org/x/sync/semaphore"
)

// Stages are the review levels (DESIGN §6.2), from the seed's phases.
var Stages = []string{"internal", "enterprise", "public"}

// DefaultBlockAt is the least severity that rejects at a stage: high at
// internal and enterprise; medium at public, where a version without
// compatibility evidence or with a moderate vulnerability is not listed.
func DefaultBlockAt(stage string) Severity {
	if stage == "public" {
		return Medium
	}
	return High
}

// Limits are the pipeline's size and file-count limits. A zero field takes
// DefaultLimits' value; a negative one means no limit.
type Limits struct {
	// MaxFiles is the most regular files an extension may hold.
	MaxFiles int
	// MaxTotalSize is the most bytes of content, summed.
	MaxTotalSize int64
	// MaxFileSize is the most bytes one file may hold.
	MaxFileSize int64
}

// DefaultLimits fit source, templates, prompts and a few tools with a wide
// margin; a larger extension is usually a build directory packed by
// mistake. Each is overridable (Options.Limits, `--max-files`, ...).
var DefaultLimits = Limits{MaxFiles: 10_000, MaxTotalSize: 256 << 20, MaxFileSize: 64 << 20}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxFiles != 0 {
		d.MaxFiles = l.MaxFiles
	}
	if l.MaxTotalSize != 0 {
		d.MaxTotalSize = l.MaxTotalSize
	}
	if l.MaxFileSize != 0 {
		d.MaxFileSize = l.MaxFileSize
	}
	return d
}

// DependencyResolver resolves an extension's declared dependencies under
// the stage's policy: marketplace.Resolve over a registry or an index.
type DependencyResolver func(ctx context.Context, reqs []resolve.Requirement) (*resolve.Resolution, error)

// Options tune a run. The zero value checks for the internal stage with
// DefaultLimits, skips the checks that need something not given (policy,
// OSV database, resolver) and says so.
type Options struct {
	// Stage is internal, enterprise or public; "" means internal.
	Stage string
	// BlockAt is the least severity that rejects; "" means
	// DefaultBlockAt(Stage).
	BlockAt Severity
	// Policy is the stage's policy: its licence rules, and the keys whose
	// compatibility attestations count. nil skips the policy's licence
	// rules (the expression is still validated).
	Policy *policy.Policy
	// Limits are the size and file-count limits.
	Limits Limits
	// OSVDir is an offline OSV database: one JSON advisory per file, as
	// osv.dev's all.zip unpacks. "" skips the vulnerability check.
	OSVDir string
	// Resolve resolves the dependency closure; nil skips that check.
	Resolve DependencyResolver
	// FactoryVersion is given to the resolution; "" resolves without one.
	FactoryVersion string
	// Remote says how to reach the registry of a reference.
	Remote remote.Options
	// Now is the report's time; zero means time.Now.
	Now time.Time
	// Workers bound the goroutines that scan content; 0 means GOMAXPROCS.
	Workers int
}

func (o *Options) normalise() error {
	if o.Stage == "" {
		o.Stage = "internal"
	}
	valid := false
	for _, s := range Stages {
		valid = valid || s == o.Stage
	}
	if !valid {
		return fmt.Errorf("stage %q: want internal, enterprise or public", o.Stage)
	}
	if o.BlockAt == "" {
		o.BlockAt = DefaultBlockAt(o.Stage)
	} else if _, err := ParseSeverity(string(o.BlockAt)); err != nil {
		return err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	o.Limits = o.Limits.withDefaults()
	return nil
}

// chunkSize is how much of a file one scan job holds: whole files up to
// it, larger text files in overlapping pieces (secrets span lines, so each
// piece starts a little before the previous one ended).
// gitleaks' own file source scans pieces of about 100 KB: a rule whose
// keyword appears runs its regular expression over the whole piece, and
// Go's regexp runs some of them at a few MB/s, so large pieces cost time
// wherever a keyword appears.
const chunkSize = 256 << 10

// chunkOverlap is how much of a piece the next one repeats, at least: a
// 4096-bit RSA private key in PEM is about 3.3 KB.
const chunkOverlap = 16 << 10

// inFlight bounds the bytes read ahead of the scanning workers.
const inFlight = 32 << 20

// maxManifestSize is the largest dependency manifest parsed for the SBOM.
const maxManifestSize = 16 << 20

// fileRecord is what the pass keeps of each file for the SBOM.
type fileRecord struct {
	path   string
	size   int64
	sha256 string
	exec   execKind
}

// pass is one read of an extension's content, shared by every check.
type pass struct {
	o   Options
	ctx context.Context
	ext *artifact.Extension

	files      []fileRecord
	manifests  []manifestFile
	descriptor []byte // the extension.yaml at the content's root
	nfiles     int
	bytes      int64
	textFiles  int
	binaries   int

	mu       sync.Mutex
	findings map[string][]Finding
	// summaries say what each check saw; skipped says why a check did
	// not run.
	summaries map[string]string
	skipped   map[string]string

	sem  *semaphore.Weighted
	jobs chan scanJob
	wg   sync.WaitGroup
	scan *secretScanner
}

type scanJob struct {
	path      string
	data      []byte
	startLine int
}

func newPass(ctx context.Context, o Options, ext *artifact.Extension) *pass {
	return &pass{o: o, ctx: ctx, ext: ext, findings: map[string][]Finding{}, summaries: map[string]string{}, skipped: map[string]string{}}
}

func (p *pass) add(check string, f Finding) {
	p.mu.Lock()
	p.findings[check] = append(p.findings[check], f)
	p.mu.Unlock()
}

// start launches the scanning workers; wait stops them.
func (p *pass) start() error {
	sc, err := defaultSecretScanner()
	if err != nil {
		return err
	}
	p.scan = sc
	p.sem = semaphore.NewWeighted(inFlight)
	p.jobs = make(chan scanJob, p.o.Workers)
	for range p.o.Workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				for _, f := range p.scan.scan(p.ctx, j.path, j.data, j.startLine) {
					p.add(CheckSecrets, f)
				}
				p.sem.Release(int64(len(j.data)))
			}
		}()
	}
	return nil
}

func (p *pass) wait() {
	close(p.jobs)
	p.wg.Wait()
}

// submit hands a piece of text to the workers; its memory is theirs.
func (p *pass) submit(path string, data []byte, startLine int) error {
	if err := p.sem.Acquire(p.ctx, int64(len(data))); err != nil {
		return err
	}
	p.jobs <- scanJob{path: path, data: data, startLine: startLine}
	return nil
}

// visit reads one file: it is hashed, sniffed for executables, kept when it
// is a dependency manifest or the descriptor, and its text handed to the
// secret scanners piece by piece. Nothing reads the file again.
func (p *pass) visit(f artifact.File, r io.Reader) error {
	p.nfiles++
	p.bytes += f.Size
	if p.o.Limits.MaxFileSize > 0 && f.Size > p.o.Limits.MaxFileSize {
		p.add(CheckLimits, Finding{Severity: High, File: f.Path, Message: fmt.Sprintf("%d bytes, over the %d-byte limit for one file", f.Size, p.o.Limits.MaxFileSize)})
	}
	h := sha256.New()
	rec := fileRecord{path: f.Path, size: f.Size}
	first := true
	text := false
	line := 1        // the line the current piece starts at
	var carry []byte // the overlap the next piece repeats
	var read int64
	keep := false // a manifest or the descriptor: kept whole
	var kept []byte
	for {
		want := min(int64(chunkSize), f.Size) // at least one read, for empty files
		buf := make([]byte, len(carry), int64(len(carry))+want)
		copy(buf, carry)
		n, err := io.ReadFull(r, buf[len(carry):cap(buf)])
		buf = buf[:len(carry)+n]
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		fresh := buf[len(carry):]
		h.Write(fresh)
		read += int64(n)
		last := err != nil || n == 0 || read >= f.Size
		if first {
			first = false
			rec.exec = classify(f, fresh)
			text = isText(fresh)
			if text {
				p.textFiles++
			} else {
				p.binaries++
			}
			keep = (isManifest(path.Base(f.Path)) && f.Size <= maxManifestSize) || (f.Path == artifact.DescriptorFile && f.Size <= maxManifestSize)
		}
		if keep {
			kept = append(kept, fresh...)
		}
		if text && len(buf) > 0 {
			piece := buf
			if !last {
				// Cut at the last newline, so no line is split; the
				// overlap, from a line start, goes round again.
				if i := bytes.LastIndexByte(piece, '\n'); i > 0 {
					piece = buf[:i+1]
				}
			}
			next := []byte(nil)
			nextLine := line
			if !last {
				start := overlapStart(piece)
				next = append([]byte(nil), buf[start:]...)
				nextLine = line + bytes.Count(piece[:start], []byte{'\n'})
			}
			if err := p.submit(f.Path, piece, line); err != nil {
				return err
			}
			carry, line = next, nextLine
		}
		if last {
			break
		}
		if !text {
			carry = nil
		}
	}
	if keep {
		if f.Path == artifact.DescriptorFile {
			p.descriptor = kept
		} else {
			p.manifests = append(p.manifests, manifestFile{path: f.Path, data: kept})
		}
	}
	rec.sha256 = hex.EncodeToString(h.Sum(nil))
	p.files = append(p.files, rec)
	return nil
}

// overlapStart is where the next piece starts: at a line start at least
// chunkOverlap bytes before the end of piece (or at its start).
func overlapStart(piece []byte) int {
	if len(piece) <= chunkOverlap {
		return len(piece) // too small to overlap usefully: it is scanned whole
	}
	i := bytes.LastIndexByte(piece[:len(piece)-chunkOverlap], '\n')
	if i < 0 {
		// One long line (minified code): repeat its last bytes only.
		return len(piece) - chunkOverlap
	}
	return i + 1
}

// finish turns what the pass gathered into the report's checks.
func (p *pass) finish(rep *Report) {
	rep.Files, rep.Bytes = p.nfiles, p.bytes
	p.limits()
	p.executables()
	bom, comps := p.sbom()
	rep.sbom = bom
	p.vulnerabilities(comps)
	p.dependencies()
	sortFindings(p.findings[CheckSecrets])
	dedupeSecrets(p)
	p.summaries[CheckSecrets] = fmt.Sprintf("%s scanned with gitleaks' default rules; %s not scanned, as gitleaks skips binaries", plural(p.textFiles, "text file"), plural(p.binaries, "binary file"))
	execs := 0
	for _, f := range p.files {
		if f.exec != notExecutable {
			execs++
		}
	}
	perms := "none"
	if len(p.ext.Spec.Permissions) > 0 {
		perms = strings.Join(p.ext.Spec.Permissions, ", ")
	}
	p.summaries[CheckExecutables] = fmt.Sprintf("executables and scripts: %d; permissions declared: %s", execs, perms)
	l := p.o.Limits
	p.summaries[CheckLimits] = fmt.Sprintf("%s, %d bytes (limits: %s, %d bytes in all, %d bytes a file)", plural(p.nfiles, "file"), p.bytes, limitText(int64(l.MaxFiles), " files"), l.MaxTotalSize, l.MaxFileSize)
}

func limitText(n int64, unit string) string {
	if n < 0 {
		return "no limit"
	}
	return fmt.Sprintf("%d%s", n, unit)
}

// sortFindings orders findings by file, line, rule.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Rule < b.Rule
	})
}

// sortBySeverity orders findings most severe first, then by location.
func sortBySeverity(fs []Finding) {
	sortFindings(fs)
	sort.SliceStable(fs, func(i, j int) bool { return severityRank[fs[i].Severity] > severityRank[fs[j].Severity] })
}

// dedupeSecrets drops the repeats that overlapping pieces found twice.
func dedupeSecrets(p *pass) {
	in := p.findings[CheckSecrets]
	out := in[:0]
	seen := map[string]bool{}
	for _, f := range in {
		k := fmt.Sprintf("%s\x00%d\x00%s", f.File, f.Line, f.Rule)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	p.findings[CheckSecrets] = out
}

func (p *pass) limits() {
	l := p.o.Limits
	if l.MaxFiles > 0 && p.nfiles > l.MaxFiles {
		p.add(CheckLimits, Finding{Severity: High, Message: fmt.Sprintf("%d files, over the limit of %d", p.nfiles, l.MaxFiles)})
	}
	if l.MaxTotalSize > 0 && p.bytes > l.MaxTotalSize {
		p.add(CheckLimits, Finding{Severity: High, Message: fmt.Sprintf("%d bytes of content, over the limit of %d", p.bytes, l.MaxTotalSize)})
	}
}

// assemble builds the report's checks from the findings and the summaries.
func assemble(rep *Report, o Options, findings map[string][]Finding, summaries map[string]string, skipped map[string]string) {
	rep.Stage, rep.BlockAt, rep.Time = o.Stage, o.BlockAt, o.Now.UTC()
	rep.Checks = nil
	rep.Blocking = 0
	for _, name := range checkOrder {
		c := CheckResult{Name: name, Status: Passed, Summary: summaries[name], Findings: findings[name]}
		if why, ok := skipped[name]; ok {
			c.Status, c.Summary = Skipped, why
		}
		for _, f := range c.Findings {
			if f.Severity.AtLeast(Low) && c.Status != Skipped {
				c.Status = Failed
			}
			if f.Severity.AtLeast(o.BlockAt) {
				rep.Blocking++
			}
		}
		rep.Checks = append(rep.Checks, c)
	}
	rep.Result = "approved"
	if rep.Blocking > 0 {
		rep.Result = "rejected"
	}
}

// plural is "1 file", "2 files".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// joinLimited joins at most n items and says how many more there are.
func joinLimited(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
