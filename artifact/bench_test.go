package artifact_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/testenv"
)

// benchTree writes an extension of size bytes, half source-like text in
// 64 KiB files, half random bytes in 8 MiB files.
func benchTree(b *testing.B, size int) string {
	b.Helper()
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(extensionYAML("bench/tree", "1.0.0", "")), 0o644)
	rng := rand.New(rand.NewPCG(7, 7))
	words := strings.Fields("func return if else for range package import type struct interface map string error nil ctx")
	for i, n := 0, 0; n < size/2; i++ {
		var sb strings.Builder
		for sb.Len() < 64<<10 {
			for j := 0; j < 8; j++ {
				sb.WriteString(words[rng.IntN(len(words))] + " ")
			}
			fmt.Fprintf(&sb, "// %d\n", rng.IntN(1e6))
		}
		p := filepath.Join(dir, "src", fmt.Sprintf("f%04d.go", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(sb.String()), 0o644)
		n += sb.Len()
	}
	for i, n := 0, 0; n < size/2; i++ {
		buf := make([]byte, 8<<20)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("data%02d.bin", i)), buf, 0o644)
		n += len(buf)
	}
	return dir
}

func BenchmarkWriteLayer32MiB(b *testing.B) {
	dir := benchTree(b, 32<<20)
	ext, _ := artifact.LoadExtension(dir)
	b.SetBytes(32 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := artifact.WriteLayer(context.Background(), io.Discard, dir, ext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnpack32MiB(b *testing.B) {
	dir := benchTree(b, 32<<20)
	ext, _ := artifact.LoadExtension(dir)
	var layer bytes.Buffer
	artifact.WriteLayer(context.Background(), &layer, dir, ext)
	b.SetBytes(32 << 20)
	b.ReportAllocs()
	for b.Loop() {
		out := b.TempDir()
		if _, err := artifact.Unpack(context.Background(), bytes.NewReader(layer.Bytes()), out, artifact.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPushPull32MiB pushes to a fresh repository (every byte uploaded)
// and pulls back, against an in-process distribution registry storing blobs
// on disk (its in-memory driver copies on every append and would dominate).
func BenchmarkPushPull32MiB(b *testing.B) {
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{RootDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	dir := benchTree(b, 32<<20)
	ctx := context.Background()
	b.SetBytes(32 << 20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{TempDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		repo := openRepo(b, reg, fmt.Sprintf("bench/pushpull-%d", i))
		if _, err := artifact.Push(ctx, repo, "", pkg, artifact.PushOptions{}); err != nil {
			b.Fatal(err)
		}
		pkg.Close()
		if _, err := artifact.Pull(ctx, repo, "1.0.0", filepath.Join(b.TempDir(), "out"), artifact.PullOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPull32MiB pulls one pushed artifact again and again: download,
// digest check, gunzip, unpack.
func BenchmarkPull32MiB(b *testing.B) {
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{RootDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	pkg, err := artifact.Pack(ctx, benchTree(b, 32<<20), artifact.PackOptions{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer pkg.Close()
	repo := openRepo(b, reg, "bench/pull")
	if _, err := artifact.Push(ctx, repo, "", pkg, artifact.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := artifact.Pull(ctx, repo, "1.0.0", filepath.Join(b.TempDir(), "out"), artifact.PullOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckContentSmallExtension is what the index's ingest pays per
// new version for the config/layer check: one layer request, read up to
// extension.yaml, on a shared client (as the ingester's per-source one).
func BenchmarkCheckContentSmallExtension(b *testing.B) {
	ctx := context.Background()
	src := b.TempDir()
	files := sampleFiles()
	writeTree(b, src, keys(files), files)
	pkg, err := artifact.Pack(ctx, src, artifact.PackOptions{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer pkg.Close()
	repo := uniqueRepo(b)
	if _, err := artifact.Push(ctx, openRepo(b, distPlain, repo), "", pkg, artifact.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	o, err := remoteOptions(distPlain).Shared()
	if err != nil {
		b.Fatal(err)
	}
	ref := distPlain.Ref(repo + "@" + pkg.Manifest.Digest.String())
	r, err := artifact.NewRepository(ref, o)
	if err != nil {
		b.Fatal(err)
	}
	a, err := artifact.Fetch(ctx, r, pkg.Manifest.Digest.String())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := artifact.CheckContentAt(ctx, ref, o, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchManifestAndConfig is the rest of an ingest's artifact read
// (manifest and config), to compare BenchmarkCheckContentSmallExtension with.
func BenchmarkFetchManifestAndConfig(b *testing.B) {
	ctx := context.Background()
	src := b.TempDir()
	files := sampleFiles()
	writeTree(b, src, keys(files), files)
	pkg, err := artifact.Pack(ctx, src, artifact.PackOptions{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer pkg.Close()
	repo := uniqueRepo(b)
	if _, err := artifact.Push(ctx, openRepo(b, distPlain, repo), "", pkg, artifact.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	o, err := remoteOptions(distPlain).Shared()
	if err != nil {
		b.Fatal(err)
	}
	r, err := artifact.NewRepository(distPlain.Ref(repo), o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := artifact.Fetch(ctx, r, pkg.Manifest.Digest.String()); err != nil {
			b.Fatal(err)
		}
	}
}
