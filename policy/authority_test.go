package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// lifecyclePredicate is a lifecycle predicate dated at.
func lifecyclePredicate(status, reason string, at time.Time) string {
	b, _ := json.Marshal(map[string]any{"status": status, "reason": reason, "time": at.UTC().Format(time.RFC3339)})
	return string(b)
}

// far is the date of the attack: a statement dated in 2099 wins
// every "newest wins" comparison unless future dates are refused.
var far = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// wantLifecycle fails unless d says status (allowed or not) and its
// lifecycle check's reason holds every one of reasons.
func wantLifecycle(t *testing.T, d *policy.Decision, status string, allowed bool, reasons ...string) {
	t.Helper()
	if d.Allowed != allowed {
		t.Fatalf("allowed=%v, want %v\n%s", d.Allowed, allowed, d.Text())
	}
	got := "active"
	if d.Lifecycle != nil {
		got = d.Lifecycle.Status
	}
	if got != status {
		t.Fatalf("effective lifecycle %q, want %q\n%s", got, status, d.Text())
	}
	c := check(d, "lifecycle")
	if c == nil {
		t.Fatalf("no lifecycle check\n%s", d.Text())
	}
	for _, r := range reasons {
		if !strings.Contains(c.Reason, r) {
			t.Fatalf("lifecycle reason %q lacks %q", c.Reason, r)
		}
	}
}

const authorityPolicy = `trustRoots:
  - {name: publishers, keys: [pub.pub]}
  - {name: security, keys: [sec.pub, sec2.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [publishers]}
    lifecycle: {authorities: [security]}
`

// The attack of issue 9, item 3: the publisher's key attests "active"
// dated 2099 after the security team's yank, then "active" with an honest
// date; the security team yanks again. The version stays yanked throughout.
func TestPublisherCannotLiftAuthorityYank(t *testing.T) {
	w := newWorld(t, "pub", "sec", "sec2")
	p := w.MustPolicy(authorityPolicy)
	ref := w.Pub.Publish("authority", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	w.Pub.Sign(ref, w.Keys["pub"])
	now := time.Now()
	w.Pub.Attest(ref, w.Keys["sec"], "lifecycle", lifecyclePredicate("yanked", "CVE-2026-1", now.Add(-2*time.Hour)))

	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("active", "", far))
	d := decide(t, p, w.input(ref, ""))
	wantLifecycle(t, d, "yanked", false, "yanked: CVE-2026-1", "lifecycle authority key",
		"ignored 1 lifecycle statement(s) dated more than 5 minutes in the future", "time 2099-01-01T00:00:00Z")
	if !d.Lifecycle.Authority || d.Lifecycle.Reason != "CVE-2026-1" {
		t.Fatalf("effective lifecycle %+v, want the authority's yank", d.Lifecycle)
	}

	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("active", "", now.Add(-time.Hour)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "yanked", false,
		"yanked: CVE-2026-1", "do not lift it (only a lifecycle authority (security) can): active stated by key")

	w.Pub.Attest(ref, w.Keys["sec"], "lifecycle", lifecyclePredicate("yanked", "CVE-2026-1, again", now.Add(-30*time.Minute)))
	d = decide(t, p, w.input(ref, ""))
	wantLifecycle(t, d, "yanked", false, "yanked: CVE-2026-1, again")

	// The decision carries the effective lifecycle for the index to store.
	raw, _ := json.Marshal(d)
	if !strings.Contains(string(raw), `"lifecycle":{"status":"yanked","reason":"CVE-2026-1, again"`) || !strings.Contains(string(raw), `"authority":true`) {
		t.Fatalf("decision JSON lacks the effective lifecycle: %s", raw)
	}
}

func TestPublisherDeprecatesAndYanksItsOwnVersionUnderAuthorities(t *testing.T) {
	w := newWorld(t, "pub", "sec", "sec2")
	p := w.MustPolicy(authorityPolicy)
	ref := w.Pub.Publish("authority", fixture.Ext{Name: "acme/widget", Version: "1.1.0"})
	w.Pub.Sign(ref, w.Keys["pub"])
	now := time.Now()
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", `{"status":"deprecated","reason":"use 2.x","successor":"2.0.0","time":"`+now.Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`)
	d := decide(t, p, w.input(ref, ""))
	wantLifecycle(t, d, "deprecated", false, "deprecated: use 2.x; use 2.0.0 instead")
	if d.Lifecycle.Authority || d.Lifecycle.Successor != "2.0.0" {
		t.Fatalf("effective lifecycle %+v, want the publisher's deprecation", d.Lifecycle)
	}
	// An authority's "active" does not lift what the publisher said of its
	// own version: other signers only ever make the status stricter.
	w.Pub.Attest(ref, w.Keys["sec"], "lifecycle", lifecyclePredicate("active", "", now.Add(-30*time.Minute)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "deprecated", false, "deprecated: use 2.x")
	// The publisher's own later yank stands, and so does its own later lift.
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("yanked", "data loss", now.Add(-20*time.Minute)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "yanked", false, "yanked: data loss")
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("active", "", now.Add(-10*time.Minute)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "active", true, "active")
}

func TestAuthorityLiftsItsOwnYank(t *testing.T) {
	w := newWorld(t, "pub", "sec", "sec2")
	p := w.MustPolicy(authorityPolicy)
	ref := w.Pub.Publish("authority", fixture.Ext{Name: "acme/widget", Version: "1.2.0"})
	w.Pub.Sign(ref, w.Keys["pub"])
	now := time.Now()
	w.Pub.Attest(ref, w.Keys["sec"], "lifecycle", lifecyclePredicate("yanked", "false alarm?", now.Add(-2*time.Hour)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "yanked", false, "yanked: false alarm?")
	// Any key of the authority roots lifts it: they act as one.
	w.Pub.Attest(ref, w.Keys["sec2"], "lifecycle", lifecyclePredicate("active", "", now.Add(-time.Hour)))
	d := decide(t, p, w.input(ref, ""))
	wantLifecycle(t, d, "active", true, "active (stated by lifecycle authority key")
	if !d.Lifecycle.Authority {
		t.Fatalf("effective lifecycle %+v, want the authority's lift", d.Lifecycle)
	}
}

// Without authorities every key is its own: its yank is lifted only by a
// later statement of the same key.
func TestWithoutAuthoritiesOnlyTheYankingKeyLiftsItsYank(t *testing.T) {
	w := newWorld(t, "a", "b")
	p := w.MustPolicy("trustRoots:\n  - {name: pubs, keys: [a.pub, b.pub]}\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pubs]}\n")
	ref := w.Pub.Publish("authority", fixture.Ext{Name: "acme/gadget", Version: "1.0.0"})
	w.Pub.Sign(ref, w.Keys["a"])
	now := time.Now()
	w.Pub.Attest(ref, w.Keys["a"], "lifecycle", lifecyclePredicate("yanked", "broken", now.Add(-2*time.Hour)))
	w.Pub.Attest(ref, w.Keys["b"], "lifecycle", lifecyclePredicate("active", "", now.Add(-time.Hour)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "yanked", false, "yanked: broken", "only a later statement by the same key can")
	w.Pub.Attest(ref, w.Keys["a"], "lifecycle", lifecyclePredicate("active", "", now.Add(-30*time.Minute)))
	wantLifecycle(t, decide(t, p, w.input(ref, "")), "active", true, "active")
}

// A statement dated more than five minutes ahead is invalid for every
// predicate type that carries a time; within the skew it counts.
func TestFutureDatedStatementsAreIgnored(t *testing.T) {
	w := newWorld(t, "pub", "rev")
	now := time.Now()
	ref := w.Pub.Publish("future", fixture.Ext{Name: "acme/clock", Version: "1.0.0"})
	w.Pub.Sign(ref, w.Keys["pub"])

	// Lifecycle: the same key's own "active" from 2099 does not lift its yank.
	life := w.MustPolicy("trustRoots:\n  - {name: pub, keys: [pub.pub]}\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n")
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("yanked", "CVE-2026-2", now.Add(-time.Hour)))
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("active", "", far))
	wantLifecycle(t, decide(t, life, w.input(ref, "")), "yanked", false, "yanked: CVE-2026-2", "ignored 1 lifecycle statement(s)")
	// Two minutes ahead is clock drift, not an attack: it counts.
	w.Pub.Attest(ref, w.Keys["pub"], "lifecycle", lifecyclePredicate("active", "", now.Add(2*time.Minute)))
	wantLifecycle(t, decide(t, life, w.input(ref, "")), "active", true, "active")

	// Review: an approval from 2099 does not outdate a rejection.
	w.Pub.Attest(ref, w.Keys["rev"], "review", `{"reviewer":"sec","result":"rejected","level":"internal","time":"`+now.Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`)
	w.Pub.Attest(ref, w.Keys["rev"], "review", `{"reviewer":"sec","result":"approved","level":"internal","time":"2099-01-01T00:00:00Z"}`)
	// Terms: terms that take effect in 2099 are not in force.
	w.Pub.Attest(ref, w.Keys["pub"], "terms", `{"license":"MIT","pricing":{"model":"free"},"effectiveDate":"2099-01-01T00:00:00Z"}`)
	p := w.MustPolicy(`trustRoots:
  - {name: pub, keys: [pub.pub]}
  - {name: rev, keys: [rev.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    attestations:
      - {type: review, trustRoots: [rev], condition: 'predicate.result == "approved"'}
      - {type: terms, trustRoots: [pub]}
`)
	d := decide(t, p, w.input(ref, ""))
	if d.Allowed {
		t.Fatalf("future-dated approval and terms counted:\n%s", d.Text())
	}
	if c := check(d, "attestation:review"); c == nil || c.Passed || !strings.Contains(c.Reason, "result=rejected") ||
		!strings.Contains(c.Reason, "ignored 1 review statement(s) dated more than 5 minutes in the future") {
		t.Fatalf("review check %+v, want the rejection to stand and the 2099 approval ignored", c)
	}
	if c := check(d, "attestation:terms"); c == nil || c.Passed || !strings.Contains(c.Reason, "effectiveDate 2099-01-01T00:00:00Z") {
		t.Fatalf("terms check %+v, want the 2099 terms ignored", c)
	}
}
