package review_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/review"
)

// sourceText is size bytes of code-like text: identifiers, calls, string
// literals, and now and then a line with a keyword gitleaks' rules look
// for (token, key, password), as real source has, so the rules' regular
// expressions run as they would.
func sourceText(r *rand.Rand, size int) string {
	words := []string{"client", "request", "handler", "config", "value", "result", "index", "buffer", "stream", "record",
		"account", "contact", "sync", "update", "fetch", "parse", "render", "schema", "field", "batch"}
	keywordLines := []string{
		"\ttoken := os.Getenv(\"CRM_TOKEN\") // read from Factory's secret store\n",
		"\tapiKey := cfg.Lookup(\"api_key\")\n",
		"\t// the password is never logged\n",
		"\tsecret := vault.Read(ctx, \"crm/secret\")\n",
	}
	var b strings.Builder
	for b.Len() < size {
		if r.IntN(40) == 0 {
			b.WriteString(keywordLines[r.IntN(len(keywordLines))])
			continue
		}
		a, c, d := words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))]
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "\t%s%d := %s.%s(ctx, %q)\n", a, r.IntN(100), c, strings.ToUpper(d[:1])+d[1:], a+"/"+c)
		case 1:
			fmt.Fprintf(&b, "\tif err := %s.%s(%s); err != nil {\n\t\treturn fmt.Errorf(\"%s %s: %%w\", err)\n\t}\n", a, c, d, c, a)
		case 2:
			fmt.Fprintf(&b, "// %s %s the %s of each %s before %s.\n", strings.ToUpper(a[:1])+a[1:], c, d, a, c)
		default:
			fmt.Fprintf(&b, "func (%s *%s) %s%d(%s []byte) (int, error) {\n", a[:1], strings.ToUpper(c[:1])+c[1:], d, r.IntN(1000), a)
		}
	}
	return b.String()[:size]
}

// benchExtension writes a 100 MiB extension: textMiB of source in 40 KiB
// files, the rest as 2 MiB binary assets (compressed images, models).
func benchExtension(b *testing.B, textMiB int) string {
	b.Helper()
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(descriptor("acme/big", "")), 0o644)
	r := rand.New(rand.NewPCG(1, 2))
	const textFile = 40 << 10
	for i := 0; i < textMiB<<20/textFile; i++ {
		p := filepath.Join(dir, "src", fmt.Sprintf("pkg%02d", i%50), fmt.Sprintf("file%04d.go", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(sourceText(r, textFile)), 0o644)
	}
	const binFile = 2 << 20
	blob := make([]byte, binFile)
	for i := 0; i < (100-textMiB)<<20/binFile; i++ {
		for j := range blob {
			blob[j] = byte(r.Uint32())
		}
		copy(blob, "\x89PNG\r\n\x1a\n") // a known binary type: not scanned, as gitleaks does
		p := filepath.Join(dir, "assets", fmt.Sprintf("asset%03d.png", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, blob, 0o644)
	}
	return dir
}

func benchmarkCheck(b *testing.B, textMiB int, ref bool) {
	dir := benchExtension(b, textMiB)
	target := dir
	if ref {
		target = pushDir(b, dir, fmt.Sprintf("bench/big%d", textMiB))
	}
	o := review.Options{OSVDir: "testdata/osv", Remote: remoteOpts(b)}
	b.SetBytes(100 << 20)
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		var rep *review.Report
		var err error
		if ref {
			rep, err = review.CheckRef(context.Background(), target, o)
		} else {
			rep, err = review.CheckDir(context.Background(), target, o)
		}
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Approved() || rep.Bytes < 99<<20 {
			b.Fatalf("report:\n%s", text(rep))
		}
	}
	// On a shared machine the wall time says more about the other jobs
	// than about the check: the process's CPU time per run is reported too
	// (the in-process registry's share included, for a reference).
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e9, "cpu-s/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheck100MiB is `mkt review check` of a 100 MiB extension, read
// once with every check in the same pass: a directory and a pushed artifact
// (pulled from the in-process registry over HTTP), with 20 MiB of source
// and 80 MiB of binary assets, and all 100 MiB source (the worst case for
// the secret scan).
func BenchmarkCheck100MiB(b *testing.B) {
	for _, c := range []struct {
		name    string
		textMiB int
		ref     bool
	}{
		{"dir/text20", 20, false}, {"ref/text20", 20, true},
		{"dir/text100", 100, false}, {"ref/text100", 100, true},
	} {
		b.Run(c.name, func(b *testing.B) { benchmarkCheck(b, c.textMiB, c.ref) })
	}
}
