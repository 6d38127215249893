package snapshot_test

import (
	"context"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/resolve/snapshot"
	"oras.land/oras-go/v2/content/memory"
)

// BenchmarkBuild100k writes a snapshot of 100,000 versions: the catalog,
// targets, snapshot and timestamp metadata, signed (issue 13: ≤ 10 s).
func BenchmarkBuild100k(b *testing.B) {
	signer := ecdsaSigner(b)
	cat := catalogOf(100_000)
	var st snapshot.State
	for b.Loop() {
		files, next, err := snapshot.Build(snapshot.BuildOptions{Signer: signer, Catalog: cat, State: st})
		if err != nil {
			b.Fatal(err)
		}
		st = next
		b.SetBytes(int64(len(files[snapshot.CatalogTarget])))
	}
}

// BenchmarkOpen100k verifies a snapshot of 100,000 versions as a client
// seeing it for the first time: TUF metadata, the catalog's hash, and
// the parsed, checked catalog (issue 13: ≤ 1 s).
func BenchmarkOpen100k(b *testing.B) {
	signer := ecdsaSigner(b)
	files, st, err := snapshot.Build(snapshot.BuildOptions{Signer: signer, Catalog: catalogOf(100_000)})
	if err != nil {
		b.Fatal(err)
	}
	store := memory.New()
	if _, err := snapshot.Push(context.Background(), store, "latest", files, "public", st.Version, time.Now()); err != nil {
		b.Fatal(err)
	}
	root := files[snapshot.RootFile(1)]
	b.SetBytes(int64(len(files[snapshot.CatalogTarget])))
	for b.Loop() {
		s, err := snapshot.Open(context.Background(), store, "latest", snapshot.OpenOptions{Root: root, CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Catalog.Versions) != 100_000 {
			b.Fatalf("%d versions", len(s.Catalog.Versions))
		}
	}
}
