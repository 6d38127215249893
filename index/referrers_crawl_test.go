package index_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// TestAReferrersTagDoesNotShadowTheReferrersAPI: on a registry with the
// referrers API, a referrers tag (sha256-<hex>, here an empty index pushed
// by the publisher) made every crawl re-ingest (the crawl fingerprinted the
// API, the ingest read the tag alone), and what only the API lists (a
// review; equally an authority's yank) never counted. Found by review. Both
// count now, the crawl settles, and it decides as a full read does.
func TestAReferrersTagDoesNotShadowTheReferrersAPI(t *testing.T) {
	ctx := context.Background()
	w := newReferrersWorld(t)
	in := w.start(t)
	c := &index.Crawler{Ingester: in}

	ref := w.pub.Publish("", fixture.Ext{Name: "acme/shadow", Version: "1.0.0"})
	dgst := ref[strings.LastIndex(ref, "@")+1:]
	if _, err := w.pub.Client.Sign(ctx, ref, w.signer, signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	review := fmt.Sprintf(`{"reviewer":"security","result":"approved","level":"public","time":%q}`, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	if _, err := w.pub.Client.Attest(ctx, ref, w.signer, signing.ReviewV1, []byte(review), signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	// The shadow: an empty index at the referrers tag, on a registry that has the API.
	repo, err := artifact.NewRepository(ref, w.pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, idx)
	if err := repo.PushReference(ctx, desc, bytes.NewReader(idx), strings.Replace(dgst, ":", "-", 1)); err != nil {
		t.Fatal(err)
	}
	var ingested []int
	for i := 0; i < 3; i++ {
		st, err := c.Reconcile(ctx, &w.src)
		if err != nil {
			t.Fatal(err)
		}
		ingested = append(ingested, st.Ingested)
	}
	v := w.stored(t, "acme/shadow", "1.0.0")
	full, err := in.Ingest(ctx, &w.src, "acme/shadow", dgst)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Signed || !v.Reviewed {
		t.Errorf("after the crawls: signed %v reviewed %v, want both (the API lists the signature and the review)", v.Signed, v.Reviewed)
	}
	if ingested[1] != 0 || ingested[2] != 0 {
		t.Errorf("unchanged registry re-ingested on every crawl: %v", ingested)
	}
	if v.Signed != full.Version.Signed || v.Reviewed != full.Version.Reviewed {
		t.Errorf("crawl-driven ingest decided differently from a full read: crawl signed %v reviewed %v, full signed %v reviewed %v", v.Signed, v.Reviewed, full.Version.Signed, full.Version.Reviewed)
	}
}
