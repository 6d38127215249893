package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"golang.org/x/term"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// humanSize prints bytes as B, KiB, MiB or GiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMG"[exp])
}

func shortDigest(d fmt.Stringer) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

// progress renders transfer events on stderr: a redrawn line per blob on a
// terminal, a plain line per finished blob otherwise (logs, CI).
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress(g *globals) *progress {
	tty := false
	if f, ok := g.stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: g.stderr, tty: tty}
}

func (p *progress) event(ev artifact.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := ev.Desc
	name := shortDigest(d.Digest)
	switch {
	case d.Annotations["org.opencontainers.image.title"] != "":
		name = d.Annotations["org.opencontainers.image.title"]
	case d.MediaType == artifact.ConfigMediaType:
		name = "config " + name
	case d.MediaType == "application/vnd.oci.image.manifest.v1+json":
		name = "manifest " + name
	}
	name = artifact.Printable(name)
	switch ev.Status {
	case "uploading", "downloading":
		if !p.tty || time.Since(p.last) < 100*time.Millisecond {
			return
		}
		p.last = time.Now()
		pct := 100.0
		if d.Size > 0 {
			pct = float64(ev.Done) * 100 / float64(d.Size)
		}
		bar := int(pct / 5)
		fmt.Fprintf(p.w, "\r%-12s %-40.40s [%-20s] %5.1f%% %s", ev.Status, name, strings.Repeat("=", max(bar, 0)), pct, humanSize(ev.Done))
	case "retrying":
		p.line(fmt.Sprintf("Retrying    %s after a transient error (at %s)", name, humanSize(ev.Done)))
	case "exists":
		p.line(fmt.Sprintf("Exists      %s %s", name, humanSize(d.Size)))
	case "done":
		p.line(fmt.Sprintf("Done        %s %s", name, humanSize(d.Size)))
	}
}

func (p *progress) line(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s\n", s)
		return
	}
	fmt.Fprintln(p.w, s)
}

// printableLines is artifact.Printable for multi-line text of ours (a
// decision's report) that quotes artifacts: each line escaped, the line
// breaks kept.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = artifact.Printable(l)
	}
	return strings.Join(lines, "\n")
}
