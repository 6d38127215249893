package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/connectsoft/marketplace/index/store"
)

var readmeTests = map[string]func(*testing.T, store.Store){
	"ReadmesKeepTheFirstByDigest": readmesKeepTheFirstByDigest,
}

// readmesKeepTheFirstByDigest: a README is found by its manifest digest,
// bytes as stored (also ones that are not UTF-8, and NUL), a digest with
// none read is ErrNotFound, an artifact without one is recorded as such,
// and a second write for a digest changes nothing (a digest names fixed
// content; a racing replica writes the same).
func readmesKeepTheFirstByDigest(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs, ok := s.(store.ReadmeStore)
	if !ok {
		t.Fatalf("%T keeps no READMEs", s)
	}
	if _, err := rs.Readme(ctx, "sha256:none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a digest never read: %v, want ErrNotFound", err)
	}
	text := []byte("# Title\n\x00\xff\xfe not UTF-8")
	for _, r := range []*store.Readme{
		{Digest: "sha256:a", Found: true, Text: text, Size: 300000, Truncated: true},
		{Digest: "sha256:a", Found: true, Text: []byte("another"), Size: 7},
		{Digest: "sha256:b"},
	} {
		if err := rs.PutReadme(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rs.Readme(ctx, "sha256:a")
	if err != nil || !got.Found || !bytes.Equal(got.Text, text) || got.Size != 300000 || !got.Truncated {
		t.Fatalf("sha256:a: %+v %v, want the first README stored, byte for byte", got, err)
	}
	got, err = rs.Readme(ctx, "sha256:b")
	if err != nil || got.Found || len(got.Text) != 0 {
		t.Fatalf("sha256:b (none in the artifact): %+v %v", got, err)
	}
}
