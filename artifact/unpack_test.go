package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

// A tar cut in the middle of a file's content (digest intact, as a
// malicious publisher could push it) is refused, not written short.
func TestUnpackRefusesTruncatedEntry(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "big.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 20})
	tw.Write(bytes.Repeat([]byte("a"), 300<<10))
	tw.Flush()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw.Bytes())
	w.Close()
	_, err := artifact.Unpack(context.Background(), &gz, t.TempDir(), artifact.Limits{})
	if !errors.Is(err, artifact.ErrUnsafeContent) {
		t.Fatalf("truncated entry: %v", err)
	}
}
