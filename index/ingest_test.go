package index_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
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
	pol := trustPolicy(t, dir, "acme.pub")
	st := storetest.SQLite(t)
	ingester := func() *index.Ingester {
		return &index.Ingester{Store: st, Policy: pol, Remote: func(*index.Source) remote.Options {
			return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
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
	// The layer (its extension.yaml, in canonical JSON, has the config's
	// digest, so the config is not read) and the signature payload (it
	// names the registry by another name than the index reads it by).
	if m, b := proxy.RequestsTo("/manifests/"+digest), proxy.RequestsTo("/blobs/"); m != 1 || b != 2 {
		t.Fatalf("a new ingester read the manifest %d times and %d blobs, want 1 and 2", m, b)
	}
}

// A signature made through the registry name the index reads by has the
// payload the index predicts from the digest, so the first ingest of a
// signed version reads one blob, the layer: not the config, whose digest
// the layer's extension.yaml has, nor the payload. A forged signature over
// the predicted payload still fails verification, and a config that the
// layer does not match is still read and refused.
func TestFirstIngestOfASignedVersionReadsOnlyTheLayer(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	ref := pub.Publish("", fixture.Ext{Name: "acme/lean", Version: "1.0.0"})
	digest := ref[strings.LastIndex(ref, "@")+1:]
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "acme")
	other, _, _ := fixture.KeyPair(t, dir, "mallory")
	pol := trustPolicy(t, dir, "acme.pub")
	st := storetest.SQLite(t)
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	ingester := func() *index.Ingester {
		return &index.Ingester{Store: st, Policy: pol, Remote: func(*index.Source) remote.Options {
			return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
		}}
	}
	viaProxy := strings.Replace(ref, reg.Host, proxy.Host, 1)
	pub.Sign(viaProxy, other) // an untrusted key's signature over the same payload
	proxy.Clear()
	got, err := ingester().Ingest(ctx, src, "acme/lean", digest)
	if err != nil || got.Version.Signed || got.Version.Allowed {
		t.Fatalf("ingest with an untrusted signature: signed %v allowed %v, err %v", got != nil && got.Version.Signed, got != nil && got.Version.Allowed, err)
	}
	pub.Sign(viaProxy, signer)
	proxy.Clear()
	if got, err = ingester().Ingest(ctx, src, "acme/lean", digest); err != nil || !got.Version.Signed || !got.Version.Allowed {
		t.Fatalf("ingest after a trusted signature: %+v %v", got, err)
	}
	if b := proxy.RequestsTo("/blobs/"); b != 1 {
		t.Fatalf("a first ingest read %d blobs, want 1 (the layer)", b)
	}
}

// trustPolicy writes and loads a policy in dir that trusts the public key
// file keyFile (relative to dir) for every repository.
func trustPolicy(t testing.TB, dir, keyFile string) *policy.Policy {
	t.Helper()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [`+keyFile+`]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoPolicyMeansNoSignedBadge: without a policy no key is trusted, so
// a signed version is listed with its signature unverified, never as
// "signed" (issue 9, item 10: an untrusted key's signature got the badge).
func TestNoPolicyMeansNoSignedBadge(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	ref := pub.Publish("", fixture.Ext{Name: "acme/nopolicy", Version: "1.0.0"})
	digest := ref[strings.LastIndex(ref, "@")+1:]
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "stranger")
	pub.Sign(ref, signer)
	in := &index.Ingester{Store: storetest.SQLite(t), Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	got, err := in.Ingest(ctx, src, "acme/nopolicy", digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version.Signed || got.Version.Allowed {
		t.Fatalf("without a policy the version is shown signed=%v allowed=%v", got.Version.Signed, got.Version.Allowed)
	}
	var ev struct{ Signatures []signing.SignatureResult }
	if err := json.Unmarshal(got.Version.Evidence, &ev); err != nil || len(ev.Signatures) != 1 || ev.Signatures[0].Verified {
		t.Fatalf("the signature is not listed as unverified: %s %v", got.Version.Evidence, err)
	}
}

// TestKeyScopedToAnotherPublisherIsNotShownVerified: a trust root scoped to
// the namespace "other" must not make acme's signature by its key look
// verified in the evidence the index shows, nor earn the badge.
func TestKeyScopedToAnotherPublisherIsNotShownVerified(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	ref := pub.Publish("", fixture.Ext{Name: "acme/scoped", Version: "1.0.0"})
	digest := ref[strings.LastIndex(ref, "@")+1:]
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "other")
	pub.Sign(ref, signer)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: other, keys: [other.pub], publishers: [other]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [other]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	in := &index.Ingester{Store: storetest.SQLite(t), Policy: p, Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	got, err := in.Ingest(ctx, src, "acme/scoped", digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version.Signed || got.Version.Allowed {
		t.Fatalf("a key scoped to another namespace gave signed=%v allowed=%v", got.Version.Signed, got.Version.Allowed)
	}
	var ev struct{ Signatures []signing.SignatureResult }
	if err := json.Unmarshal(got.Version.Evidence, &ev); err != nil || len(ev.Signatures) != 1 || ev.Signatures[0].Verified {
		t.Fatalf("the out-of-scope signature is shown verified: %s %v", got.Version.Evidence, err)
	}
}
