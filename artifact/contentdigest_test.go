package artifact_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

// The content digest is what a control list blocks when the same files
// are republished under another name: it must not move with the
// descriptor, the paths, the entry order or the packing, and must move
// with any byte of any other file.
func TestContentDigestIgnoresNameDescriptorAndPaths(t *testing.T) {
	ctx := context.Background()
	digestOf := func(files ...[2]string) string {
		t.Helper()
		d, err := artifact.LayerContentDigest(ctx, bytes.NewReader(layerOf(t, files...)), artifact.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	original := digestOf([2]string{"extension.yaml", extensionYAML("acme/widget", "1.0.0", "")},
		[2]string{"module/main.yaml", "steal: tokens\n"}, [2]string{"README.md", "# widget\n"})
	renamed := digestOf([2]string{"README.md", "# widget\n"}, [2]string{"x/y/stolen.yaml", "steal: tokens\n"},
		[2]string{"extension.yaml", extensionYAML("evil/gadget", "9.0.0", "  keywords: [new]\n")})
	if original == "" || original != renamed {
		t.Fatalf("the same files under another name, paths and order: %q vs %q", original, renamed)
	}
	changed := digestOf([2]string{"extension.yaml", extensionYAML("acme/widget", "1.0.0", "")},
		[2]string{"module/main.yaml", "steal: tokens \n"}, [2]string{"README.md", "# widget\n"})
	if changed == original {
		t.Fatal("one byte changed, same content digest")
	}
	if d := digestOf([2]string{"extension.yaml", extensionYAML("acme/empty", "1.0.0", "")}); d != "" {
		t.Fatalf("an extension with only its descriptor has no content digest, got %q", d)
	}
	if !artifact.IsContentDigest(original) {
		t.Fatalf("%q is not a content digest by IsContentDigest", original)
	}

	// Unpacking computes the same as it writes, and the files on disk hash
	// to it again; a changed file on disk does not.
	dir := t.TempDir()
	st, err := artifact.Unpack(ctx, bytes.NewReader(layerOf(t, [2]string{"extension.yaml", extensionYAML("acme/widget", "1.0.0", "")},
		[2]string{"module/main.yaml", "steal: tokens\n"}, [2]string{"README.md", "# widget\n"})), dir, artifact.Limits{})
	if err != nil || st.ContentDigest != original {
		t.Fatalf("unpack: %q, %v; want %q", st.ContentDigest, err, original)
	}
	onDisk, err := artifact.DirContentDigest(dir)
	if err != nil || onDisk != original {
		t.Fatalf("on disk: %q, %v; want %q", onDisk, err, original)
	}
	os.WriteFile(filepath.Join(dir, "module", "main.yaml"), []byte("patched\n"), 0o644)
	if d, _ := artifact.DirContentDigest(dir); d == original {
		t.Fatal("a file changed on disk, same content digest")
	}
}
