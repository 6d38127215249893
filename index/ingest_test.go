package index_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/internal/fixture"
)

// A version is ingested again when its signature arrives. The manifest
// and config of a digest cannot have changed, so the second ingest reads
// only the evidence; an ingester that has not seen the digest reads all.
func TestReingestOfADigestReadsOnlyItsEvidence(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	ref := pub.Publish("", fixture.Ext{Name: "acme/again", Version: "1.0.0"})
	digest := ref[strings.LastIndex(ref, "@")+1:]
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "acme")
	st := storetest.SQLite(t)
	ingester := func() *index.Ingester {
		return &index.Ingester{Store: st, Remote: func(*index.Source) artifact.RemoteOptions {
			return artifact.RemoteOptions{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
		}}
	}
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	in := ingester()
	got, err := in.Ingest(ctx, src, "acme/again", digest)
	if err != nil || got.Version.Signed || !got.Result.Created {
		t.Fatalf("first ingest: %+v %v", got, err)
	}

	pub.Sign(ref, signer)
	proxy.Clear()
	if got, err = in.Ingest(ctx, src, "acme/again", digest); err != nil || !got.Version.Signed || got.Version.Name != "acme/again" {
		t.Fatalf("ingest after signing: %+v %v", got, err)
	}
	if n := proxy.RequestsTo("/manifests/" + digest); n != 0 {
		t.Fatalf("the re-ingest read the manifest %d times", n)
	}
	if n := proxy.RequestsTo("/blobs/"); n != 1 {
		t.Fatalf("the re-ingest read %d blobs, want 1 (the signature payload, not the config)", n)
	}

	proxy.Clear()
	if got, err = ingester().Ingest(ctx, src, "acme/again", digest); err != nil || !got.Version.Signed {
		t.Fatalf("ingest by a new ingester: %+v %v", got, err)
	}
	if m, b := proxy.RequestsTo("/manifests/"+digest), proxy.RequestsTo("/blobs/"); m != 1 || b != 2 {
		t.Fatalf("a new ingester read the manifest %d times and %d blobs, want 1 and 2", m, b)
	}
}
