package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestOverviewIgnoresThePublishersOwnReviews: the publisher's own key
// verifies its signatures (the policy trusts it for acme's extensions),
// so a review attestation acme signs itself verified too; it named
// itself the pipeline, newer than the pipeline's real run with a high
// finding, and the extension page and details answer showed acme's
// "approved, no findings, verified" in place of the pipeline's findings,
// and acme's "approved by security-team" as a verified review. A review
// signed by a key that signed the artifact counts for nothing.
func TestOverviewIgnoresThePublishersOwnReviews(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, testenv.DistributionOptions{})
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	acme, acmeKey, _ := fixture.KeyPair(t, dir, "acme")
	pipeline, pipelineKey, _ := fixture.KeyPair(t, dir, "pipeline")
	_, _, _ = fixture.KeyPair(t, dir, "curator")
	pol := (&fixture.PolicyWorld{T: t, Dir: dir}).MustPolicy(strings.TrimPrefix(extPagePolicy, "apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\n"))
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src := &index.Source{Name: "public", Registry: reg.Host, PlainHTTP: reg.PlainHTTP, Repositories: []string{"pub/**"}, Tenant: "acme", Visibility: store.Public}
	ing := &index.Ingester{Store: st, Policy: pol, Remote: func(*index.Source) remote.Options { return pub.Remote }}
	ref := pub.Publish("pub", fixture.Ext{Name: "acme/shady", Version: "1.0.0"})
	pub.Sign(ref, acme)
	old := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
	newer := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	pub.Attest(ref, pipeline, "review", fmt.Sprintf(`{"reviewer":"pipeline","result":"rejected","level":"public","findings":[{"severity":"high","message":"REAL-FINDING: sends the token to a third party"}],"time":%q}`, old))
	pub.Attest(ref, acme, "review", fmt.Sprintf(`{"reviewer":"pipeline","result":"approved","level":"public","findings":[],"time":%q}`, newer))
	pub.Attest(ref, acme, "review", fmt.Sprintf(`{"reviewer":"security-team","result":"approved","level":"public","notes":"SELF-APPROVED","time":%q}`, newer))
	repo, digest, _ := strings.Cut(ref, "@")
	if _, err := ing.Ingest(ctx, src, strings.TrimPrefix(repo, reg.Host+"/"), digest); err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st)
	cat.MaxLag = 0
	api := &index.API{Store: st, Catalog: cat, Operator: "ops", PublicURL: publicURL,
		Publishers: []index.Publisher{{Name: "acme", Tenant: "acme", Tier: "verified", Fingerprints: []string{acmeKey.Fingerprint}}}}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	w := &extPageWorld{url: srv.URL}
	code, body := w.details(t, "", "acme/shady")
	if code != 200 {
		t.Fatalf("details: %d %s", code, body)
	}
	var d struct {
		Overview index.Overview `json:"overview"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	p := d.Overview.Review.Pipeline
	if p == nil || p.Fingerprint != pipelineKey.Fingerprint || !p.Verified || p.Result != "rejected" {
		t.Errorf("the automated checks shown are %+v, not the pipeline's own run (key %s) with its finding", p, pipelineKey.Fingerprint)
	}
	for _, r := range d.Overview.Review.Reviews {
		if r.Fingerprint == acmeKey.Fingerprint && r.Verified {
			t.Errorf("acme's review of its own extension shows as verified: %+v", r)
		}
	}
	// The page says the same.
	resp, err := srv.Client().Get(srv.URL + "/extensions/acme/shady")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "REAL-FINDING") {
		t.Errorf("the page hides the pipeline's finding")
	}
}
