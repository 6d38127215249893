package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

// layer is a tar+gzip of files in the order given, as another tool than
// the packer (which sorts) may write one.
func layer(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// countingReader counts what ReadLayerReadme read of the layer.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadLayerReadmeStopsAsSoonAsItCan(t *testing.T) {
	ctx := context.Background()
	noise := strings.Repeat("x", 4<<20) // 4 MiB of other content, compressible
	cases := []struct {
		name      string
		files     [][2]string
		o         artifact.ReadmeOptions
		want      string // "" for none
		truncated bool
		maxRead   int // compressed bytes read at most
	}{
		{"first, then stops", [][2]string{{"README.md", "# hi"}, {"extension.yaml", "x"}, {"zz/big", noise}}, artifact.ReadmeOptions{}, "# hi", false, 64 << 10},
		{"capped", [][2]string{{"README.md", strings.Repeat("a", 1000)}}, artifact.ReadmeOptions{MaxText: 100}, strings.Repeat("a", 100), true, 64 << 10},
		{"sorted layer without one ends at the first later name", [][2]string{{"a.txt", "a"}, {"zz/big", noise}}, artifact.ReadmeOptions{}, "", false, 64 << 10},
		{"not at the root", [][2]string{{"docs/README.md", "# deep"}}, artifact.ReadmeOptions{}, "", false, 64 << 10},
		{"unsorted, beyond the read budget", [][2]string{{"Z", "z"}, {"Zbig", strings.Repeat("y", 1<<20)}}, artifact.ReadmeOptions{MaxRead: 1024}, "", false, 1024},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(layer(t, c.files...))}
			r, err := artifact.ReadLayerReadme(ctx, cr, c.o)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == "" && r != nil:
				t.Fatalf("found %q, want none", r.Text)
			case c.want != "" && (r == nil || string(r.Text) != c.want || r.Truncated != c.truncated):
				t.Fatalf("got %+v, want %q truncated %v", r, c.want, c.truncated)
			}
			if cr.n > c.maxRead {
				t.Errorf("read %d compressed bytes, want at most %d", cr.n, c.maxRead)
			}
		})
	}
}

func TestReadLayerReadmeRefusesUnsafeEntries(t *testing.T) {
	_, err := artifact.ReadLayerReadme(context.Background(), bytes.NewReader(layer(t, [2]string{"../README.md", "# escape"})), artifact.ReadmeOptions{})
	if err == nil {
		t.Fatal("a layer with ../README.md read without an error")
	}
}
