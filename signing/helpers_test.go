package signing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// copyTag replays the cosign tag of one artifact onto another's, as an
// attacker with push rights would to borrow a signature.
func copyTag(t testing.TB, reg *testenv.Registry, repo, from, to, suffix string) {
	t.Helper()
	r, err := artifact.NewRepository(reg.Ref(repo), remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	src := artifact.CosignTag(digest.Digest(from), suffix)
	dst := artifact.CosignTag(digest.Digest(to), suffix)
	if _, err := oras.Copy(context.Background(), r, src, r, dst, oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
}

// tamperSignaturePayload rewrites the payload of the first signature of
// subject, keeping its signature annotation, and re-tags the manifest.
func tamperSignaturePayload(t testing.TB, reg *testenv.Registry, repo, subject string) {
	t.Helper()
	ctx := context.Background()
	r, err := artifact.NewRepository(reg.Ref(repo), remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	tag := artifact.CosignTag(digest.Digest(subject), artifact.SignatureTagSuffix)
	desc, raw, err := oras.FetchBytes(ctx, r, tag, oras.DefaultFetchBytesOptions)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(raw, &m)
	payload, err := content.FetchAll(ctx, r, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	evil := bytes.Replace(payload, []byte(`"cosign container image signature"`), []byte(`"cosign container image signaturE"`), 1)
	if bytes.Equal(evil, payload) {
		t.Fatal("payload not tampered")
	}
	ld := m.Layers[0]
	ld.Digest, ld.Size = digest.FromBytes(evil), int64(len(evil))
	if err := r.Push(ctx, ld, bytes.NewReader(evil)); err != nil {
		t.Fatal(err)
	}
	m.Layers[0] = ld
	raw, _ = json.Marshal(m)
	desc.Digest, desc.Size = digest.FromBytes(raw), int64(len(raw))
	if err := r.PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
		t.Fatal(err)
	}
}
