package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// curatorsPolicy requires 2 of the 3 curators' approvals at the public level.
const curatorsPolicy = `trustRoots:
  - {name: curators, keys: [c1.pub, c2.pub, c3.pub]}
rules:
  - name: curated
    match: {repositories: ["**"]}
    attestations:
      - type: review
        trustRoots: [curators]
        threshold: 2
        condition: 'predicate.result == "approved" && predicate.level == "public"'
`

func review(reviewer, result string, at time.Time) string {
	return fmt.Sprintf(`{"reviewer":%q,"result":%q,"level":"public","time":%q}`, reviewer, result, at.UTC().Format(time.RFC3339))
}

// N-of-M approvals: distinct keys count, each by its own newest statement;
// one key approving twice is one approval, and a key outside the roots (a
// publisher approving its own version) counts for nothing.
func TestAttestationThresholdCountsDistinctApprovers(t *testing.T) {
	w := newWorld(t, "c1", "c2", "c3", "pub")
	p := w.MustPolicy(curatorsPolicy)
	ref := w.Pub.Publish("curated", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	now := time.Now()
	status := func() *policy.Check {
		t.Helper()
		c := check(decide(t, p, w.input(ref, "")), policy.CheckAttestation("https://connectsoft.io/marketplace/review/v1"))
		if c == nil {
			t.Fatal("no review check")
		}
		return c
	}
	if c := status(); c.Passed || !strings.Contains(c.Reason, "0 of 2") {
		t.Fatalf("no approvals: %+v", c)
	}
	w.Pub.Attest(ref, w.Keys["c1"], "review", review("curator-1", "approved", now.Add(-3*time.Hour)))
	w.Pub.Attest(ref, w.Keys["c1"], "review", review("curator-1 again", "approved", now.Add(-2*time.Hour)))
	w.Pub.Attest(ref, w.Keys["pub"], "review", review("acme itself", "approved", now.Add(-2*time.Hour)))
	if c := status(); c.Passed || !strings.Contains(c.Reason, "1 of 2") {
		t.Fatalf("one curator twice and the publisher's own approval passed: %+v", c)
	}
	w.Pub.Attest(ref, w.Keys["c2"], "review", review("curator-2", "approved", now.Add(-time.Hour)))
	if c := status(); !c.Passed || !strings.Contains(c.Reason, "2 of 2") {
		t.Fatalf("two curators approved: %+v", c)
	}
	// A third curator's rejection withdraws nothing of the others'; the
	// first curator's own later rejection withdraws its approval.
	w.Pub.Attest(ref, w.Keys["c3"], "review", review("curator-3", "rejected", now.Add(-30*time.Minute)))
	if c := status(); !c.Passed || !strings.Contains(c.Reason, "fails the condition") {
		t.Fatalf("a third curator's rejection: %+v", c)
	}
	w.Pub.Attest(ref, w.Keys["c1"], "review", review("curator-1", "rejected", now.Add(-10*time.Minute)))
	if c := status(); c.Passed || !strings.Contains(c.Reason, "1 of 2") {
		t.Fatalf("curator 1 withdrew its approval: %+v", c)
	}
}

func TestAttestationThresholdOverTheKeysIsRefused(t *testing.T) {
	w := newWorld(t, "c1")
	_, err := w.Policy("trustRoots:\n  - {name: c, keys: [c1.pub]}\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    attestations:\n      - {type: review, trustRoots: [c], threshold: 2}\n")
	if err == nil || !strings.Contains(err.Error(), "2 is more than the 1 keys") || !strings.Contains(err.Error(), "attestations[0].threshold") {
		t.Fatalf("threshold 2 of one key: %v", err)
	}
}
