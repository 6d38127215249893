package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

func FuzzParseExtension(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte(extensionYAML("acme/x", "1.0.0-rc.1+build.5", "  include: [\"**\"]\n")))
	f.Add([]byte("kind: [\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("apiVersion: marketplace.connectsoft.io/v1\nmetadata: 7\nspec: {dependencies: [{name: 1}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ext, err := artifact.ParseExtension(bytes.NewReader(data), "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, artifact.ErrInvalidExtension) {
				t.Fatalf("error is not ErrInvalidExtension: %v", err)
			}
			return
		}
		// Whatever parses must validate and survive the config round trip.
		if err := ext.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		j, err := ext.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := artifact.ParseConfig(j)
		if err != nil {
			t.Fatalf("config of a valid descriptor refused: %v\n%s", err, j)
		}
		j2, _ := back.CanonicalJSON()
		if !bytes.Equal(j, j2) {
			t.Fatalf("canonical JSON unstable:\n%s\n%s", j, j2)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	ext, _ := artifact.ParseExtension(strings.NewReader(validYAML), "x")
	j, _ := ext.CanonicalJSON()
	f.Add(j)
	f.Add([]byte(`{"apiVersion":1}`))
	f.Add([]byte(`{} {}`))
	f.Add(bytes.Replace(j, []byte(`"name":"acme/salesforce"`), []byte(`"name":"acme/salesforce","NAME":"evil/x"`), 1))
	f.Add(bytes.Replace(j, []byte(`"license":"Apache-2.0"`), []byte(`"license":"GPL-3.0-only","license":"Apache-2.0"`), 1))
	f.Add(bytes.Replace(j, []byte(`,"kind"`), []byte(`, "kind"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		ext, err := artifact.ParseConfig(data)
		if err != nil {
			if !errors.Is(err, artifact.ErrInvalidExtension) {
				t.Fatalf("error is not ErrInvalidExtension: %v", err)
			}
			return
		}
		// Whatever is accepted is exactly the canonical form of what it
		// says: no duplicate or case-variant key, nothing any JSON reader
		// could read differently.
		canon, err := ext.CanonicalJSON()
		if err != nil || !bytes.Equal(canon, data) {
			t.Fatalf("accepted a config that is not canonical:\n%s\n%s", data, canon)
		}
	})
}

// FuzzUnpack feeds layers to the unpacker. Inputs that are not gzip are
// gzipped first, so the fuzzer explores tar structure rather than gzip
// checksums. Whatever happens, nothing may appear outside the target, and
// a successful unpack may hold only regular files and directories.
func FuzzUnpack(f *testing.F) {
	dir := f.TempDir()
	files := sampleFiles()
	writeTree(f, dir, keys(files), files)
	ext, err := artifact.LoadExtension(dir)
	if err != nil {
		f.Fatal(err)
	}
	var good bytes.Buffer
	if _, err := artifact.WriteLayer(context.Background(), &good, dir, ext); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	for _, entries := range [][]tarEntry{
		{{hdr: tar.Header{Name: "../x", Typeflag: tar.TypeReg}, body: "x"}},
		{{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}}, {hdr: tar.Header{Name: "l/x", Typeflag: tar.TypeReg}, body: "x"}},
		{{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir}}, {hdr: tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o755}, body: "#!/bin/sh"}},
		{{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg}, body: "1"}, {hdr: tar.Header{Name: "a/b", Typeflag: tar.TypeReg}, body: "2"}},
	} {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, e := range entries {
			h := e.hdr
			h.Size = int64(len(e.body))
			tw.WriteHeader(&h)
			tw.Write([]byte(e.body))
		}
		tw.Close()
		f.Add(raw.Bytes())
	}
	limits := artifact.Limits{MaxFiles: 200, MaxTotalSize: 8 << 20, RatioGrace: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
			var gz bytes.Buffer
			w := gzip.NewWriter(&gz)
			w.Write(data)
			w.Close()
			data = gz.Bytes()
		}
		parent := t.TempDir()
		target := filepath.Join(parent, "target")
		os.Mkdir(target, 0o755)
		_, err := artifact.Unpack(context.Background(), bytes.NewReader(data), target, limits)
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 || entries[0].Name() != "target" {
			t.Fatalf("unpack wrote outside its target: %v", entries)
		}
		if err != nil {
			return
		}
		filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !d.Type().IsRegular() && !d.IsDir() {
				t.Fatalf("unpack created %s of type %v", p, d.Type())
			}
			return nil
		})
	})
}
