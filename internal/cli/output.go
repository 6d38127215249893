package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"golang.org/x/term"
)

// A result is what one command produced. Every command returns one (or an
// error) and the printer alone writes it: as JSON by the result's own field
// tags (lowerCamelCase, the HTTP API's names), or as text by printText. A
// command never writes its result itself, so a result and an error can never
// become two documents on stdout.
type result interface {
	// printText writes the human form: the result on p.stdout, messages
	// about it on p.stderr.
	printText(p *printer)
}

// printer is the one place that writes results and errors. In JSON mode it
// writes exactly one document on stdout per run: the result, the error
// ({"error":{…}}), or, when a command fails with a result (a failed
// verification's verdict), the result's fields with "error" beside them.
type printer struct {
	stdout, stderr io.Writer
	json           bool
	verbose        bool

	// emitted is set once a document was written, so nothing writes a
	// second one (dev up prints its addresses, then serves until stopped).
	emitted bool
}

// emit writes res, the result of a command that keeps running after it
// (dev up). Whatever happens afterwards goes to stderr only.
func (p *printer) emit(res result) error {
	p.emitted = true
	if p.json {
		return writeJSON(p.stdout, res)
	}
	res.printText(p)
	return nil
}

// finish prints the outcome of a run: res (may be nil) and err (may be
// nil), and returns the exit code.
func (p *printer) finish(res result, err error) int {
	if err == nil {
		if res != nil && !p.emitted {
			if werr := p.emit(res); werr != nil {
				fmt.Fprintf(p.stderr, "mkt: write the result: %v\n", werr)
				return exitFailure
			}
		}
		return exitOK
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status) // mkt-server ran the command and printed what it had to
	}
	body := describeError(err)
	if !p.json && res != nil && !p.emitted {
		res.printText(p)
	}
	fmt.Fprintf(p.stderr, "mkt: %s\n", body.Message)
	if body.Hint != "" {
		fmt.Fprintf(p.stderr, "hint: %s\n", body.Hint)
	}
	if p.json && !p.emitted {
		p.emitted = true
		if werr := writeFailure(p.stdout, res, body); werr != nil {
			fmt.Fprintf(p.stderr, "mkt: write the error: %v\n", werr)
		}
	}
	return body.ExitCode
}

// errorDocument is the JSON of a failure without a result.
type errorDocument struct {
	Error *errorBody `json:"error"`
}

// writeFailure writes body as {"error":{…}}, beside res's fields when the
// command failed with a result, so a script reads a failed verification's
// checks and its error from one document.
func writeFailure(w io.Writer, res result, body *errorBody) error {
	if res == nil {
		return writeJSON(w, errorDocument{body})
	}
	resJSON, err := marshal(res)
	if err != nil {
		return err
	}
	errJSON, err := marshal(errorDocument{body})
	if err != nil {
		return err
	}
	resJSON = bytes.TrimSpace(resJSON)
	if len(resJSON) < 2 || resJSON[0] != '{' {
		return fmt.Errorf("result %T is not a JSON object", res)
	}
	// Both are objects: drop res's closing brace and errJSON's opening one.
	var doc bytes.Buffer
	doc.Write(resJSON[:len(resJSON)-1])
	if len(bytes.TrimSpace(resJSON[1:len(resJSON)-1])) > 0 {
		doc.WriteByte(',')
	}
	doc.Write(bytes.TrimSpace(errJSON)[1:])
	var out bytes.Buffer
	if err := json.Indent(&out, doc.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

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
