package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

const scopedRoots = `trustRoots:
  - {name: acme, keys: [acme.pub], publishers: [acme]}
  - {name: shared, keys: [shared.pub]}
`

func TestScopedTrustRootCountsOnlyForItsNamespace(t *testing.T) {
	w := newWorld(t, "acme", "shared")
	evil := w.Pub.Publish("scope", fixture.Ext{Name: "evil/xx", Version: "1.0.0"})
	w.Pub.Sign(evil, w.Keys["acme"])
	mine := w.Pub.Publish("scope", fixture.Ext{Name: "acme/xx", Version: "1.0.0"})
	w.Pub.Sign(mine, w.Keys["acme"])
	p := w.MustPolicy(scopedRoots + "rules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [acme]}\n")

	d := decide(t, p, w.input(evil, ""))
	if c := check(d, "signature"); d.Allowed || c == nil || !strings.Contains(c.Reason, "trust root acme counts only for extensions of acme, not evil/xx") {
		t.Fatalf("acme's key counted for evil/xx:\n%s", d.Text())
	}
	if d := decide(t, p, w.input(mine, "")); !d.Allowed {
		t.Fatalf("acme's key did not count for acme/xx:\n%s", d.Text())
	}
	// The keys evidence is shown with follow the same scope.
	if n := len(p.KeysFor(w.input(evil, ""))); n != 1 {
		t.Fatalf("KeysFor(evil/xx) has %d keys, want only the shared one", n)
	}
	if n := len(p.KeysFor(w.input(mine, ""))); n != 2 {
		t.Fatalf("KeysFor(acme/xx) has %d keys, want 2", n)
	}
}

func TestThresholdCountsOnlyKeysScopedToTheNamespace(t *testing.T) {
	w := newWorld(t, "acme", "shared")
	p := w.MustPolicy(scopedRoots + "rules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [acme, shared], threshold: 2}\n")
	evil := w.Pub.Publish("scope", fixture.Ext{Name: "evil/yy", Version: "1.0.0"})
	w.Pub.Sign(evil, w.Keys["acme"], w.Keys["shared"])
	mine := w.Pub.Publish("scope", fixture.Ext{Name: "acme/yy", Version: "1.0.0"})
	w.Pub.Sign(mine, w.Keys["acme"], w.Keys["shared"])

	d := decide(t, p, w.input(evil, ""))
	if c := check(d, "signature"); d.Allowed || c == nil || !strings.Contains(c.Reason, "signed by 1 distinct trusted keys of acme, shared, 2 needed") {
		t.Fatalf("the scoped key counted towards evil/yy's threshold:\n%s", d.Text())
	}
	if d := decide(t, p, w.input(mine, "")); !d.Allowed {
		t.Fatalf("2 of 2 keys for acme/yy:\n%s", d.Text())
	}
}

// A key scoped to another namespace attests nothing about this one: not a
// review, and not a lifecycle statement.
func TestScopedKeyAttestsOnlyForItsNamespace(t *testing.T) {
	w := newWorld(t, "acme", "shared")
	p := w.MustPolicy(scopedRoots + "rules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [shared]}\n    attestations:\n      - {type: review, trustRoots: [acme]}\n")
	evil := w.Pub.Publish("scope", fixture.Ext{Name: "evil/zz", Version: "1.0.0"})
	w.Pub.Sign(evil, w.Keys["shared"])
	w.Pub.Attest(evil, w.Keys["acme"], "review", `{"reviewer":"acme","result":"approved","level":"internal"}`)
	w.Pub.Attest(evil, w.Keys["acme"], "lifecycle", `{"status":"yanked","reason":"acme says so"}`)
	d := decide(t, p, w.input(evil, ""))
	if c := check(d, "attestation:review"); c == nil || c.Passed || !strings.Contains(c.Reason, "counts only for extensions of acme") {
		t.Fatalf("acme's review counted for evil/zz:\n%s", d.Text())
	}
	if d.Lifecycle != nil || check(d, "lifecycle") != nil {
		t.Fatalf("acme's yank counted for evil/zz:\n%s", d.Text())
	}
}

func TestLoadRefusesBadNamespacesAndAuthoritiesWithLines(t *testing.T) {
	w := newWorld(t, "pub")
	rule := "rules:\n  - name: r\n    match: {repositories: [\"**\"]}\n"
	cases := []struct {
		name, body string
		want       []string
	}{
		{"namespace with capitals", "trustRoots:\n  - name: p\n    keys: [pub.pub]\n    publishers: [acme, Acme_Corp]\n" + rule,
			[]string{"policy.yaml:6:", "trustRoots[0].publishers[1]", `"Acme_Corp" is not a publisher namespace`, "acme for acme/widget"}},
		{"a full name instead of a namespace", "trustRoots:\n  - name: p\n    keys: [pub.pub]\n    publishers: [acme/widget]\n" + rule,
			[]string{"policy.yaml:6:", `"acme/widget" is not a publisher namespace`}},
		{"empty scope", "trustRoots:\n  - name: p\n    keys: [pub.pub]\n    publishers: []\n" + rule,
			[]string{"policy.yaml:6:", "name at least one publisher namespace"}},
		{"unknown authority", "trustRoots:\n  - name: p\n    keys: [pub.pub]\n" + rule + "    lifecycle: {authorities: [security]}\n",
			[]string{"policy.yaml:9:", `unknown trust root "security"`}},
	}
	for _, tc := range cases {
		_, err := w.Policy(tc.body)
		if !errors.Is(err, policy.ErrInvalidPolicy) {
			t.Errorf("%s: want an invalid policy, got %v", tc.name, err)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q lacks %q", tc.name, err, s)
			}
		}
	}
}

func TestNextChangeIsTheNextTrustRootWindowEdge(t *testing.T) {
	w := newWorld(t, "a", "b")
	p := w.MustPolicy(`trustRoots:
  - {name: old, keys: [a.pub], validUntil: 2027-01-31T00:00:00Z}
  - {name: new, keys: [b.pub], validFrom: 2027-01-01T00:00:00Z, validUntil: 2028-01-01T00:00:00Z}
  - {name: always, keys: [a.pub]}
rules:
  - name: r
    match: {repositories: ["**"]}
`)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct{ after, want string }{
		{"2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2027-01-01T00:00:00Z", "2027-01-31T00:00:00Z"}, // strictly after: an edge at `after` is past
		{"2027-01-15T12:00:00Z", "2027-01-31T00:00:00Z"},
		{"2027-06-01T00:00:00Z", "2028-01-01T00:00:00Z"},
	}
	for _, tc := range cases {
		if got := p.NextChange(at(tc.after)); !got.Equal(at(tc.want)) {
			t.Errorf("NextChange(%s) = %s, want %s", tc.after, got, tc.want)
		}
	}
	if got := p.NextChange(at("2028-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("NextChange after the last edge = %s, want zero", got)
	}
	// The decision changes at the edge NextChange names, not before.
	ref := w.Pub.Publish("window", fixture.Ext{Name: "acme/ww", Version: "1.0.0"})
	w.Pub.Sign(ref, w.Keys["b"])
	q := w.MustPolicy("trustRoots:\n  - {name: new, keys: [b.pub], validFrom: 2027-01-01T00:00:00Z}\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [new]}\n")
	edge := q.NextChange(at("2026-06-01T00:00:00Z"))
	in := w.input(ref, "")
	in.Now = edge.Add(-time.Second)
	if d := decide(t, q, in); d.Allowed {
		t.Fatalf("allowed before the window opens:\n%s", d.Text())
	}
	in.Now = edge
	if d := decide(t, q, in); !d.Allowed {
		t.Fatalf("denied once the window is open:\n%s", d.Text())
	}
}
