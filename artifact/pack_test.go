package artifact_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
)

// writeTree writes files (path → content; a path ending in "*" is made
// executable) under dir in the given order.
func writeTree(t testing.TB, dir string, order []string, files map[string]string) {
	t.Helper()
	for _, p := range order {
		name := strings.TrimSuffix(p, "*")
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(files[p]), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func extensionYAML(name, version string, extra string) string {
	return "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: " + name +
		"\n  version: " + version + "\n  title: Test module\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n" + extra
}

func sampleFiles() map[string]string {
	return map[string]string{
		"extension.yaml":       extensionYAML("acme/sample", "1.0.0", "  entrypoint: module/main.yaml\n"),
		"module/main.yaml":     "main: true\n",
		"module/run.sh*":       "#!/bin/sh\necho hi\n",
		"docs/README.md":       "# Sample\n",
		"docs/deep/a/b/c.txt":  strings.Repeat("text ", 1000),
		"z-last.txt":           "z\n",
		"a-first/nested-x.txt": "x\n",
	}
}

func pack(t testing.TB, dir string) *artifact.Package {
	t.Helper()
	pkg, err := artifact.Pack(context.Background(), dir, artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pkg.Close() })
	return pkg
}

func TestPackIsReproducibleAcrossMtimesOwnersAndOrder(t *testing.T) {
	files := sampleFiles()
	var order []string
	for p := range files {
		order = append(order, p)
	}
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, order, files)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	writeTree(t, b, order, files)
	// Different times, owners and directory modes in b.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.Walk(b, func(p string, info os.FileInfo, err error) error {
		os.Chtimes(p, old, old)
		if os.Geteuid() == 0 {
			os.Lchown(p, 1234, 5678)
		}
		if info.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	pa, pb := pack(t, a), pack(t, b)
	if pa.Layer.Digest != pb.Layer.Digest || pa.Manifest.Digest != pb.Manifest.Digest {
		t.Fatalf("digests differ: layer %s vs %s, manifest %s vs %s", pa.Layer.Digest, pb.Layer.Digest, pa.Manifest.Digest, pb.Manifest.Digest)
	}
	if pa.Files != len(files) {
		t.Fatalf("packed %d files, want %d", pa.Files, len(files))
	}
	// A change of content or of the exec bit changes the digest.
	os.Chmod(filepath.Join(b, "module/run.sh"), 0o644)
	if pc := pack(t, b); pc.Layer.Digest == pa.Layer.Digest {
		t.Fatal("dropping the exec bit did not change the layer digest")
	}
}

func TestPackAnnotationsOmitCreatedUnlessAsked(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles()
	writeTree(t, dir, keys(files), files)
	pkg := pack(t, dir)
	if strings.Contains(string(pkg.ManifestJSON()), "org.opencontainers.image.created") {
		t.Fatal("created annotation written without SOURCE_DATE_EPOCH")
	}
	p2, err := artifact.Pack(context.Background(), dir, artifact.PackOptions{Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if !strings.Contains(string(p2.ManifestJSON()), `"org.opencontainers.image.created":"2023-11-14T22:13:20Z"`) {
		t.Fatalf("created annotation missing: %s", p2.ManifestJSON())
	}
	for _, want := range []string{`"artifactType":"application/vnd.connectsoft.module.v1"`, `"io.connectsoft.marketplace.name":"acme/sample"`, `"org.opencontainers.image.licenses":"MIT"`, `"io.connectsoft.marketplace.compatibility.factory":"\u003e=2.0.0"`} {
		if !strings.Contains(string(pkg.ManifestJSON()), want) {
			t.Errorf("manifest lacks %s: %s", want, pkg.ManifestJSON())
		}
	}
}

func TestPackHonoursIncludeExcludeAndNeverPacksGit(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"extension.yaml":    extensionYAML("acme/globs", "1.0.0", "  include: [\"extension.yaml\", \"src/**\", \"docs/*.md\"]\n  exclude: [\"**/*.tmp\", \"src/vendor\"]\n"),
		"src/a.go":          "package a\n",
		"src/b.tmp":         "scratch\n",
		"src/vendor/v.go":   "package v\n",
		"src/.git/config":   "[core]\n",
		".git/HEAD":         "ref: refs/heads/main\n",
		"docs/guide.md":     "guide\n",
		"docs/deep/more.md": "not included\n",
		"other.txt":         "not included\n",
	}
	writeTree(t, dir, keys(files), files)
	pkg := pack(t, dir)
	out := t.TempDir()
	f, _ := pkg.OpenLayer()
	defer f.Close()
	if _, err := artifact.Unpack(context.Background(), f, out, artifact.Limits{}); err != nil {
		t.Fatal(err)
	}
	got := listTree(t, out)
	want := "docs/ docs/guide.md extension.yaml src/ src/a.go"
	if got != want {
		t.Fatalf("packed %q, want %q", got, want)
	}
}

func TestPackRefusesSymlinksAndMissingEntrypoint(t *testing.T) {
	dir := t.TempDir()
	files := sampleFiles()
	writeTree(t, dir, keys(files), files)
	os.Symlink("/etc/passwd", filepath.Join(dir, "docs/passwd"))
	_, err := artifact.Pack(context.Background(), dir, artifact.PackOptions{})
	if err == nil || !strings.Contains(err.Error(), "docs/passwd: symbolic links are not packed") {
		t.Fatalf("symlink not refused clearly: %v", err)
	}
	os.Remove(filepath.Join(dir, "docs/passwd"))
	os.Remove(filepath.Join(dir, "module/main.yaml"))
	_, err = artifact.Pack(context.Background(), dir, artifact.PackOptions{})
	if err == nil || !strings.Contains(err.Error(), `spec.entrypoint "module/main.yaml" is not a file`) {
		t.Fatalf("missing entrypoint not refused clearly: %v", err)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// listTree lists dir as "a/ a/b c" with modes checked by the caller.
func listTree(t testing.TB, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if info.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	return strings.Join(out, " ")
}
