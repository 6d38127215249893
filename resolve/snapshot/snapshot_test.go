package snapshot_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"oras.land/oras-go/v2/content/memory"
)

func ecdsaSigner(t testing.TB) *snapshot.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func catalogOf(n int) *snapshot.Catalog {
	c := &snapshot.Catalog{APIVersion: snapshot.CatalogAPIVersion, Kind: snapshot.CatalogKind, Scope: "public", Created: time.Now().UTC()}
	for i := range n {
		c.Versions = append(c.Versions, snapshot.Entry{
			Name: fmt.Sprintf("acme/ext%d", i/10), Version: fmt.Sprintf("1.%d.0", i%10),
			Repository: fmt.Sprintf("registry.example.com/acme/ext%d", i/10),
			Digest:     fmt.Sprintf("sha256:%064x", i), Kind: string(artifact.KindConnector), Factory: ">=2.0.0",
			Dependencies: []artifact.Dependency{{Name: "acme/base", Version: "^1.0"}},
		})
	}
	return c
}

// world is one writer and the registry (memory) it pushes to.
type world struct {
	t      *testing.T
	signer *snapshot.Signer
	state  snapshot.State
	store  *memory.Store
	root   []byte
	cache  string
}

func newWorld(t *testing.T) *world {
	return &world{t: t, signer: ecdsaSigner(t), store: memory.New(), cache: t.TempDir()}
}

// write builds the next snapshot and pushes it under tag.
func (w *world) write(tag string, o snapshot.BuildOptions) snapshot.Files {
	w.t.Helper()
	if o.Signer == nil {
		o.Signer = w.signer
	}
	if o.Catalog == nil {
		o.Catalog = catalogOf(30)
	}
	o.State = w.state
	files, st, err := snapshot.Build(o)
	if err != nil {
		w.t.Fatal(err)
	}
	w.state = st
	if w.root == nil {
		w.root = files[snapshot.RootFile(1)]
	}
	w.push(tag, files)
	return files
}

func (w *world) push(tag string, files snapshot.Files) {
	w.t.Helper()
	if _, err := snapshot.Push(context.Background(), w.store, tag, files, "public", w.state.Version, time.Now()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) open(tag string) (*snapshot.Snapshot, error) {
	return snapshot.Open(context.Background(), w.store, tag, snapshot.OpenOptions{Root: w.root, CacheDir: w.cache})
}

func TestOpenVerifiesTheCatalog(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{})
	s, err := w.open("v1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 1 || len(s.Catalog.Versions) != 30 || len(s.Lookup("acme/ext0")) != 10 {
		t.Fatalf("version %d, %d versions, %d of acme/ext0", s.Version, len(s.Catalog.Versions), len(s.Lookup("acme/ext0")))
	}
	if got := s.Lookup("acme/ext0")[0].Version; got != "1.9.0" {
		t.Fatalf("highest first: got %s", got)
	}
	// The next snapshot is accepted, and is version 2.
	w.write("v2", snapshot.BuildOptions{Catalog: catalogOf(40)})
	s, err = w.open("v2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 || len(s.Catalog.Versions) != 40 {
		t.Fatalf("version %d with %d versions", s.Version, len(s.Catalog.Versions))
	}
}

func TestOpenRefusesRollback(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{})
	w.write("v2", snapshot.BuildOptions{})
	if _, err := w.open("v2"); err != nil {
		t.Fatal(err)
	}
	_, err := w.open("v1")
	t.Log(err)
	if !errors.Is(err, snapshot.ErrRollback) || !errors.Is(err, snapshot.ErrRefused) {
		t.Fatalf("rolled back to v1: %v", err)
	}
	if !strings.Contains(err.Error(), "rollback check") {
		t.Fatalf("error does not name the check: %v", err)
	}
	// The client still trusts v2, and a fresh client (another cache) takes v1.
	if _, err := w.open("v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Open(context.Background(), w.store, "v1", snapshot.OpenOptions{Root: w.root, CacheDir: t.TempDir()}); err != nil {
		t.Fatalf("a client that never saw v2: %v", err)
	}
}

func TestOpenRefusesExpiredTimestamp(t *testing.T) {
	w := newWorld(t)
	w.write("old", snapshot.BuildOptions{Now: time.Now().Add(-48 * time.Hour)})
	_, err := w.open("old")
	t.Log(err)
	if !errors.Is(err, snapshot.ErrFreeze) {
		t.Fatalf("expired timestamp: %v", err)
	}
	if !strings.Contains(err.Error(), "freeze check") || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("error does not name the check and role: %v", err)
	}
}

func TestOpenRefusesExpiredTargets(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{Expiry: snapshot.Expiry{Targets: time.Hour}})
	_, err := snapshot.Open(context.Background(), w.store, "v1", snapshot.OpenOptions{Root: w.root, CacheDir: w.cache, Now: time.Now().Add(2 * time.Hour)})
	t.Log(err)
	if !errors.Is(err, snapshot.ErrFreeze) {
		t.Fatalf("expired targets: %v", err)
	}
}

func TestOpenRefusesTamperedCatalog(t *testing.T) {
	w := newWorld(t)
	files := w.write("v1", snapshot.BuildOptions{})
	evil := snapshot.Files{}
	for k, v := range files {
		evil[k] = v
	}
	// An attacker redirects one version to their own digest.
	evil[snapshot.CatalogTarget] = []byte(strings.Replace(string(files[snapshot.CatalogTarget]), fmt.Sprintf("%064x", 3), fmt.Sprintf("%064x", 0xbad), 1))
	w.push("evil", evil)
	_, err := w.open("evil")
	t.Log(err)
	if !errors.Is(err, snapshot.ErrMixAndMatch) || !strings.Contains(err.Error(), "mix-and-match check") {
		t.Fatalf("tampered catalog: %v", err)
	}
}

func TestOpenRefusesMixedMetadata(t *testing.T) {
	w := newWorld(t)
	v1 := w.write("v1", snapshot.BuildOptions{})
	v2 := w.write("v2", snapshot.BuildOptions{Catalog: catalogOf(50)})
	// v2's timestamp and snapshot with v1's targets and catalog.
	mixed := snapshot.Files{}
	for k, v := range v2 {
		mixed[k] = v
	}
	mixed[snapshot.TargetsFile], mixed[snapshot.CatalogTarget] = v1[snapshot.TargetsFile], v1[snapshot.CatalogTarget]
	w.push("mixed", mixed)
	_, err := w.open("mixed")
	t.Log(err)
	if !errors.Is(err, snapshot.ErrMixAndMatch) {
		t.Fatalf("mixed targets: %v", err)
	}
}

func TestOpenRefusesAnotherKey(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{})
	other := newWorld(t)
	other.write("forged", snapshot.BuildOptions{})
	w.push("forged", other.files(t))
	_, err := w.open("forged")
	t.Log(err)
	if !errors.Is(err, snapshot.ErrSignature) || !strings.Contains(err.Error(), "signature check") {
		t.Fatalf("signed by another key: %v", err)
	}
}

func (w *world) files(t *testing.T) snapshot.Files {
	t.Helper()
	files, _, err := snapshot.Build(snapshot.BuildOptions{Signer: w.signer, Catalog: catalogOf(3), State: w.state})
	if err != nil {
		t.Fatal(err)
	}
	// Present it as the first snapshot: only root 1 is a file the victim
	// walks, and it is the attacker's.
	return files
}

func TestBuildRefusesAKeyTheRootDoesNotTrust(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{})
	_, _, err := snapshot.Build(snapshot.BuildOptions{Signer: ecdsaSigner(t), Catalog: catalogOf(1), State: w.state})
	if !errors.Is(err, snapshot.ErrRootKey) {
		t.Fatalf("another key: %v", err)
	}
}

func TestBuildRenewsARootAboutToExpire(t *testing.T) {
	w := newWorld(t)
	w.write("v1", snapshot.BuildOptions{Expiry: snapshot.Expiry{Root: 2 * 24 * time.Hour}})
	w.write("v2", snapshot.BuildOptions{})
	if len(w.state.Roots) != 2 {
		t.Fatalf("%d roots, want a second one (the first expires before the targets would)", len(w.state.Roots))
	}
	s, err := w.open("v2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 {
		t.Fatalf("version %d", s.Version)
	}
}

func TestEveryKeyTypeSigns(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]crypto.Signer{"rsa": rk, "ed25519": ek} {
		t.Run(name, func(t *testing.T) {
			s, err := snapshot.NewSigner(k)
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t)
			w.signer = s
			w.write("v1", snapshot.BuildOptions{})
			if _, err := w.open("v1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
