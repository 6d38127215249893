package artifact_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/testenv"
)

func stockOras(t testing.TB) *testenv.Tool {
	t.Helper()
	tool, err := testenv.NewTool("oras", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return tool
}

// orasFlags are the connection flags stock oras needs for reg.
func orasFlags(reg *testenv.Registry) []string {
	if reg.PlainHTTP {
		return []string{"--plain-http"}
	}
	return []string{"--ca-file", reg.CAFile, "--registry-config", authConf}
}

func TestStockOrasReadsWhatMktPushed(t *testing.T) {
	ctx := context.Background()
	oras := stockOras(t)
	pkg := pack(t, sampleWithBlob(t, 128<<10))
	for _, reg := range []*testenv.Registry{distPlain, distAuth} {
		t.Run(reg.Name+map[bool]string{true: "-plain", false: "-tls-auth"}[reg.PlainHTTP], func(t *testing.T) {
			repo := uniqueRepo(t)
			if _, err := artifact.Push(ctx, openRepo(t, reg, repo), "1.0.0", pkg, artifact.PushOptions{}); err != nil {
				t.Fatal(err)
			}
			ref := reg.Ref(repo + ":1.0.0")
			out, err := oras.Run(ctx, append([]string{"manifest", "fetch"}, append(orasFlags(reg), ref)...)...)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(pkg.ManifestJSON()) {
				t.Fatalf("oras manifest fetch returned other bytes:\n%s\nwant\n%s", out, pkg.ManifestJSON())
			}
			dir := t.TempDir()
			if _, err := oras.Run(ctx, append([]string{"pull", "-o", dir}, append(orasFlags(reg), ref)...)...); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(dir, "acme-sample-1.0.0.tar.gz"))
			if err != nil {
				t.Fatalf("oras pull did not save the layer under its title: %v", err)
			}
			defer f.Close()
			h := sha256.New()
			io.Copy(h, f)
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != pkg.Layer.Digest.String() {
				t.Fatalf("oras pulled layer %s, pushed %s", got, pkg.Layer.Digest)
			}
		})
	}
}

func TestMktRefusesArtifactsWithoutOurMediaTypes(t *testing.T) {
	ctx := context.Background()
	oras := stockOras(t)
	oras.Dir = t.TempDir()
	os.WriteFile(filepath.Join(oras.Dir, "notes.txt"), []byte("just a file\n"), 0o644)
	repo := uniqueRepo(t)
	if _, err := oras.Run(ctx, "push", "--plain-http", distPlain.Ref(repo+":1.0.0"), "notes.txt"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err := artifact.Pull(ctx, openRepo(t, distPlain, repo), "1.0.0", out, artifact.PullOptions{})
	if !errors.Is(err, artifact.ErrNotExtension) || !strings.Contains(err.Error(), `artifactType "application/vnd.unknown.artifact.v1"`) {
		t.Fatalf("pull of a plain oras artifact: %v", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatal("refused pull created its target")
	}
}

// tarEntry is one entry of a hand-made, possibly hostile, layer.
type tarEntry struct {
	hdr  tar.Header
	body string
}

// writeHostileLayer writes entries as a tar+gzip at path. When open is
// true the archive is cut after the last header, as a bomb that only
// declares its size would be.
func writeHostileLayer(t testing.TB, path string, entries []tarEntry, open bool) {
	t.Helper()
	tw, gz, done := createLayer(t, path)
	defer done()
	for _, e := range entries {
		h := e.hdr
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			io.WriteString(tw, e.body)
		}
	}
	if !open {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		tw.Flush()
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// pushWithStockOras pushes layer with our config and media types through
// stock oras, so the hostile content arrives as any outside publisher's would.
func pushWithStockOras(t testing.TB, oras *testenv.Tool, ref, layer string) {
	t.Helper()
	ext, err := artifact.ParseExtension(strings.NewReader(extensionYAML("evil/payload", "6.6.6", "")), "extension.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := ext.CanonicalJSON()
	dir := filepath.Dir(layer)
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	oras.Dir = dir
	_, err = oras.Run(context.Background(), "push", "--plain-http",
		"--artifact-type", artifact.KindModule.ArtifactType(),
		"--config", "config.json:"+artifact.ConfigMediaType,
		ref, filepath.Base(layer)+":"+artifact.LayerMediaType)
	if err != nil {
		t.Fatal(err)
	}
}

func TestHostileLayersPushedByStockOrasAreRefused(t *testing.T) {
	ctx := context.Background()
	oras := stockOras(t)
	var reg byte = tar.TypeReg
	zeros := strings.Repeat("\x00", 64<<20)
	cases := []struct {
		name    string
		entries []tarEntry
		open    bool
		want    string
	}{
		{"path traversal", []tarEntry{{hdr: tar.Header{Name: "ok.txt", Typeflag: reg}, body: "ok"}, {hdr: tar.Header{Name: "../../escaped.txt", Typeflag: reg}, body: "pwned"}}, false, "path traversal"},
		{"nested traversal", []tarEntry{{hdr: tar.Header{Name: "a/../../escaped.txt", Typeflag: reg}, body: "pwned"}}, false, "path traversal"},
		{"absolute path", []tarEntry{{hdr: tar.Header{Name: "/tmp/mkt-absolute-escape.txt", Typeflag: reg}, body: "pwned"}}, false, "absolute path"},
		{"symlink escape", []tarEntry{{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../"}}, {hdr: tar.Header{Name: "link/escaped.txt", Typeflag: reg}, body: "pwned"}}, false, "symbolic link"},
		{"hardlink escape", []tarEntry{{hdr: tar.Header{Name: "passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}}, false, "hard link"},
		{"device", []tarEntry{{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}, false, "character device"},
		{"fifo", []tarEntry{{hdr: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo}}}, false, "FIFO"},
		{"duplicate entry", []tarEntry{{hdr: tar.Header{Name: "a.txt", Typeflag: reg}, body: "first"}, {hdr: tar.Header{Name: "./a.txt", Typeflag: reg}, body: "second"}}, false, "duplicate entry"},
		{"declares gigabytes", []tarEntry{{hdr: tar.Header{Name: "huge.bin", Typeflag: reg, Size: 8 << 30}}}, true, "over the"},
		{"compression bomb", []tarEntry{{hdr: tar.Header{Name: "zeros.bin", Typeflag: reg}, body: zeros}}, false, "compression ratio"},
		{"million tiny files", nil, false, "more than 50000 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			layer := filepath.Join(work, "layer.tar.gz")
			if tc.entries == nil {
				writeManyFilesLayer(t, layer, 1_000_000)
			} else {
				writeHostileLayer(t, layer, tc.entries, tc.open)
			}
			repo := uniqueRepo(t)
			pushWithStockOras(t, oras, distPlain.Ref(repo+":6.6.6"), layer)

			// Pull two levels down, so an escape by "../../" lands in the
			// watched parent rather than in a shared directory.
			parent := t.TempDir()
			out := filepath.Join(parent, "a", "b", "out")
			_, err := artifact.Pull(ctx, openRepo(t, distPlain, repo), "6.6.6", out, artifact.PullOptions{})
			if !errors.Is(err, artifact.ErrUnsafeContent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want unsafe content (%s), got %v", tc.want, err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Fatalf("refused pull left %v behind", entries)
			}
			if _, err := os.Stat("/tmp/mkt-absolute-escape.txt"); err == nil {
				t.Fatal("absolute path was written")
			}
		})
	}
}

// writeManyFilesLayer writes n empty files, streaming, as a layer.
func writeManyFilesLayer(t testing.TB, path string, n int) {
	t.Helper()
	tw, gz, done := createLayer(t, path)
	defer done()
	for i := 0; i < n; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f/%07d", i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	gz.Close()
}

// createLayer opens path for a hand-made tar+gzip layer; done closes the file.
func createLayer(t testing.TB, path string) (*tar.Writer, *gzip.Writer, func()) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	return tar.NewWriter(gz), gz, func() { f.Close() }
}
