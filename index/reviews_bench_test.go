package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
)

// BenchmarkReviewQueue10000Pending measures GET /api/v1/reviews (issue 11:
// p99 ≤ 50 ms with 10,000 pending versions) on a SQLite store holding
// 10,000 quarantined versions of 1,000 extensions, each with a stored
// decision and a pipeline review with findings, through the API handler
// as a reviewer's token calls it, paging through the queue. It reports
// the p50 and p99 of the requests' latencies (docs/performance.md).
func BenchmarkReviewQueue10000Pending(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	d, _ := json.Marshal(&policy.Decision{Mode: "enforce", Rules: []string{"public"}, Checks: []policy.Check{
		{Name: policy.CheckSignature, Rule: "public", Passed: true, Reason: "signed by 1 of 1 trusted keys of acme (threshold 1)"},
		{Name: "attestation:review", Rule: "public", Reason: "0 of 2 needed distinct keys of curators made review attestation(s)"}}})
	pred, _ := json.Marshal(signing.Review{Reviewer: "pipeline", Result: "approved", Level: "public", Time: time.Now().UTC(),
		Checks:   []signing.Check{{Name: "secrets", Passed: true}, {Name: "licence", Passed: true}, {Name: "permissions", Passed: true}},
		Findings: []signing.Finding{{Severity: "low", Message: "no README", Location: "."}, {Severity: "medium", Message: "script not declared", Location: "bin/run.sh"}}})
	ev, _ := json.Marshal(map[string]any{"signatures": []signing.SignatureResult{{Source: "tag", Fingerprint: "ab12", Verified: true}},
		"attestations": []signing.AttestationResult{{Source: "tag", PredicateType: signing.ReviewV1, Fingerprint: "cd34", Verified: true,
			Statement: &signing.Statement{PredicateType: signing.ReviewV1, Predicate: pred}}}})
	start := time.Now()
	for i := range 10_000 {
		name := fmt.Sprintf("acme/ext-%04d", i/10)
		v := &store.Version{Tenant: "acme", Name: name, Version: fmt.Sprintf("1.0.%d", i%10), Repository: "registry.example.com/" + name,
			Digest: fmt.Sprintf("sha256:%064x", i), Kind: "Module", License: "MIT", Factory: ">=2.0.0 <3.0.0", Visibility: store.Public,
			Signed: true, Stage: "public", Quarantined: true, Decision: d, Evidence: ev}
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stored 10,000 pending versions in %s", time.Since(start))
	tok, rec, err := index.NewToken("connectsoft", []string{index.RoleReviewer})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.PutToken(ctx, rec); err != nil {
		b.Fatal(err)
	}
	h := (&index.API{Store: st, Operator: "connectsoft"}).Handler()
	get := func(page int) time.Duration {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/v1/reviews?stage=public&status=pending&page=%d", page), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(w, req)
		took := time.Since(t0)
		if w.Code != http.StatusOK {
			b.Fatalf("page %d: %d %s", page, w.Code, w.Body)
		}
		return took
	}
	var first index.ReviewPage
	get(1) // fills the catalog from the store
	req := httptest.NewRequest(http.MethodGet, "/api/v1/reviews?stage=public", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if err := json.Unmarshal(w.Body.Bytes(), &first); err != nil || first.Total != 10_000 || len(first.Items) != 50 || first.Items[0].Pipeline == nil {
		b.Fatalf("the queue: %v total %d, %d items", err, first.Total, len(first.Items))
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lat = append(lat, get(1+i%200))
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(at(.5), "p50-ms")
	b.ReportMetric(at(.99), "p99-ms")
}
