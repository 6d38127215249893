package policy_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var reg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&reg, testenv.DistributionOptions{})))
}

// world is fixture's policy world, with the decision input these tests read.
type world struct{ *fixture.PolicyWorld }

func newWorld(t *testing.T, keyNames ...string) *world {
	return &world{fixture.NewPolicyWorld(t, reg, keyNames...)}
}

// input fetches what a decision about ref needs.
func (w *world) input(ref, factory string) policy.Input {
	w.T.Helper()
	ctx := context.Background()
	repo, err := artifact.NewRepository(ref, w.Pub.Remote)
	if err != nil {
		w.T.Fatal(err)
	}
	a, err := artifact.Fetch(ctx, repo, repo.Reference.Reference)
	if err != nil {
		w.T.Fatal(err)
	}
	ev, err := w.Pub.Client.Collect(ctx, ref)
	if err != nil {
		w.T.Fatal(err)
	}
	return policy.Input{Repository: ref[:strings.Index(ref, "@")], Digest: a.Descriptor.Digest.String(),
		Extension: a.Extension, Evidence: ev, FactoryVersion: factory}
}

func decide(t *testing.T, p *policy.Policy, in policy.Input) *policy.Decision {
	t.Helper()
	d, err := p.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func check(d *policy.Decision, name string) *policy.Check {
	for i := range d.Checks {
		if d.Checks[i].Name == name {
			return &d.Checks[i]
		}
	}
	return nil
}

func TestLoadRefusesBadPoliciesWithLines(t *testing.T) {
	w := newWorld(t, "pub")
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown field", "trustRoots:\n  - name: p\n    keys: [pub.pub]\n    validUtil: 2027-01-01T00:00:00Z\nrules: []\n", []string{"policy.yaml:6:5", `unknown field "validUtil"`, `did you mean "validUntil"`}},
		{"unknown trust root", "trustRoots:\n  - name: p\n    keys: [pub.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [publishers]}\n", []string{"policy.yaml:9:", `unknown trust root "publishers"`}},
		{"CEL that does not compile", "trustRoots:\n  - name: p\n    keys: [pub.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    attestations:\n      - type: review\n        trustRoots: [p]\n        condition: 'predicate.result ==== \"approved\"'\n", []string{"policy.yaml:12:", "CEL does not compile"}},
		{"bad glob", "trustRoots:\n  - name: p\n    keys: [pub.pub]\nrules:\n  - name: r\n    match: {repositories: [\"reg/[acme\"]}\n", []string{"not a valid glob"}},
		{"unreadable key", "trustRoots:\n  - name: p\n    keys: [missing.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n", []string{"policy.yaml:5:", "missing.pub"}},
		{"threshold over the keys", "trustRoots:\n  - name: p\n    keys: [pub.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [p], threshold: 2}\n", []string{"2 is more than the 1 keys"}},
		{"bad licence id", "trustRoots:\n  - name: p\n    keys: [pub.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    licenses: {allow: [MIT, Apache2]}\n", []string{`"Apache2" is not an SPDX licence id`}},
		{"bad mode", "mode: lenient\ntrustRoots: []\nrules: []\n", []string{`"lenient": want enforce or audit`}},
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

const roots = `trustRoots:
  - name: publishers
    keys: [p1.pub, p2.pub, p3.pub]
  - name: review
    keys: [rev.pub]
`

func TestEvaluate(t *testing.T) {
	w := newWorld(t, "p1", "p2", "p3", "rev")
	ref := w.Pub.Publish("eval", fixture.Ext{Name: "acme/thing", Version: "1.0.0", License: "MIT OR Apache-2.0", Factory: ">=2.1.0 <3.0.0"})
	w.Pub.Sign(ref, w.Keys["p1"], w.Keys["p2"])
	w.Pub.Attest(ref, w.Keys["rev"], "review", `{"reviewer":"sec","result":"approved","level":"internal"}`)
	gpl := w.Pub.Publish("eval", fixture.Ext{Name: "acme/gpl", Version: "1.0.0", License: "MIT AND GPL-3.0-only"})
	in := w.input(ref, "2.4.0")
	rule := func(extra string) string {
		return roots + "rules:\n  - name: all\n    match: {repositories: [\"" + reg.Host + "/eval/**\"]}\n" + extra
	}
	cases := []struct {
		name    string
		policy  string
		in      policy.Input
		allowed bool
		check   string
		reason  string
	}{
		{"2 of 3 keys", rule("    signatures: {trustRoots: [publishers], threshold: 2}\n"), in, true, "signature", "signed by 2 of 3 trusted keys"},
		{"3 of 3 keys", rule("    signatures: {trustRoots: [publishers], threshold: 3}\n"), in, false, "signature", "signed by 2 distinct trusted keys of publishers, 3 needed"},
		{"approved review", rule("    attestations:\n      - {type: review, trustRoots: [review], condition: 'predicate.result == \"approved\"'}\n"), in, true, "attestation:review", "satisfies"},
		{"condition false", rule("    attestations:\n      - {type: review, trustRoots: [review], condition: 'predicate.level == \"public\"'}\n"), in, false, "attestation:review", "fails predicate.level"},
		{"CEL runtime error", rule("    attestations:\n      - {type: review, trustRoots: [review], condition: 'predicate.score > 3'}\n"), in, false, "attestation:review", "CEL evaluation failed"},
		{"CEL over the descriptor", rule("    attestations:\n      - {type: review, trustRoots: [review], condition: 'extension.metadata.name.startsWith(\"acme/\")'}\n"), in, true, "attestation:review", "satisfies"},
		{"review by the wrong root", rule("    attestations:\n      - {type: review, trustRoots: [publishers]}\n"), in, false, "attestation:review", "no review attestation by a trusted key of publishers"},
		{"OR licence, one branch allowed", rule("    licenses: {allow: [MIT]}\n"), in, true, "license", "allowed"},
		{"AND licence, one part denied", rule("    licenses: {allow: [MIT, Apache-2.0]}\n"), w.input(gpl, ""), false, "license", "not allowed"},
		{"deny list", rule("    licenses: {deny: [MIT, Apache-2.0]}\n"), in, false, "license", "not allowed"},
		{"compatible Factory", rule("    compatibility: required\n"), in, true, "compatibility", "satisfies"},
		{"incompatible Factory", rule("    compatibility: required\n"), withFactory(in, "3.1.0"), false, "compatibility", "incompatible"},
		{"no Factory version", rule("    compatibility: required\n"), withFactory(in, ""), false, "compatibility", "no Factory version"},
		{"no Factory version, checked at resolution (the index)", rule("    compatibility: required\n"), atResolution(withFactory(in, "")), true, "compatibility", "checked at resolution: the Factory version asking must satisfy >=2.1.0 <3.0.0"},
		{"a Factory version given is checked even at resolution", rule("    compatibility: required\n"), atResolution(withFactory(in, "3.1.0")), false, "compatibility", "incompatible"},
		{"no rule matches", roots + "rules:\n  - name: other\n    match: {repositories: [\"elsewhere/**\"]}\n", in, false, "match", "no rule of"},
		{"kind does not match", roots + "rules:\n  - name: connectors\n    match: {repositories: [\"**\"], kinds: [Connector]}\n", in, false, "match", "Module"},
		{"expired trust root", "trustRoots:\n  - name: publishers\n    keys: [p1.pub, p2.pub]\n    validUntil: 2020-01-01T00:00:00Z\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [publishers]}\n", in, false, "signature", "trust root publishers is not valid now (expired 2020-01-01T00:00:00Z)"},
		{"audit mode", "mode: audit\n" + rule("    attestations:\n      - {type: terms, trustRoots: [publishers]}\n"), in, true, "attestation:terms", "no terms attestation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, w.MustPolicy(tc.policy), tc.in)
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v\n%s", d.Allowed, tc.allowed, d.Text())
			}
			c := check(d, tc.check)
			if c == nil || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("check %s: %+v, want reason with %q\n%s", tc.check, c, tc.reason, d.Text())
			}
		})
	}
	// Audit mode reports the failure while allowing.
	d := decide(t, w.MustPolicy("mode: audit\n"+rule("    attestations:\n      - {type: terms, trustRoots: [publishers]}\n")), in)
	if !d.Allowed || d.Passed || !strings.Contains(d.Text(), "audit mode") {
		t.Fatalf("audit decision: %s", d.Text())
	}
}

func withFactory(in policy.Input, v string) policy.Input { in.FactoryVersion = v; return in }

func atResolution(in policy.Input) policy.Input { in.CompatibilityAtResolution = true; return in }

func TestLifecycle(t *testing.T) {
	w := newWorld(t, "pub")
	p := w.MustPolicy("trustRoots:\n  - name: pub\n    keys: [pub.pub]\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n")
	pd := w.MustPolicy("trustRoots:\n  - name: pub\n    keys: [pub.pub]\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n    lifecycle: {allowDeprecated: true}\n")
	yanked := w.Pub.Publish("life", fixture.Ext{Name: "acme/old", Version: "1.0.0"})
	w.Pub.Sign(yanked, w.Keys["pub"])
	w.Pub.Attest(yanked, w.Keys["pub"], "lifecycle", `{"status":"yanked","reason":"CVE-2026-42","successor":"1.0.1"}`)
	dep := w.Pub.Publish("life", fixture.Ext{Name: "acme/old", Version: "1.1.0"})
	w.Pub.Sign(dep, w.Keys["pub"])
	w.Pub.Attest(dep, w.Keys["pub"], "lifecycle", `{"status":"deprecated","reason":"use 2.x","successor":"2.0.0"}`)

	in := w.input(yanked, "")
	if d := decide(t, p, in); d.Allowed || !strings.Contains(check(d, "lifecycle").Reason, "yanked: CVE-2026-42; use 1.0.1 instead") {
		t.Fatalf("yanked by tag: %s", d.Text())
	}
	in.PinnedByDigest = true
	if d := decide(t, p, in); !d.Allowed {
		t.Fatalf("yanked but pinned by digest: %s", d.Text())
	}
	pr := w.MustPolicy("trustRoots:\n  - name: pub\n    keys: [pub.pub]\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n    lifecycle: {refusePinnedYanked: true}\n")
	if d := decide(t, pr, in); d.Allowed || !strings.Contains(check(d, "lifecycle").Reason, "refusePinnedYanked") {
		t.Fatalf("yanked, pinned by digest, under refusePinnedYanked: %s", d.Text())
	}
	if d := decide(t, pr, w.input(dep, "")); d.Allowed || !strings.Contains(check(d, "lifecycle").Reason, "deprecated") {
		t.Fatalf("refusePinnedYanked changed a deprecated version's decision: %s", d.Text())
	}
	if d := decide(t, p, w.input(dep, "")); d.Allowed || !strings.Contains(check(d, "lifecycle").Reason, "use 2.0.0 instead") {
		t.Fatalf("deprecated without allowDeprecated: %s", d.Text())
	}
	if d := decide(t, pd, w.input(dep, "")); !d.Allowed {
		t.Fatalf("deprecated with allowDeprecated: %s", d.Text())
	}
}

var fuzzExt = fixture.Module("acme/xx", "1.0.0", "")

func FuzzParsePolicy(f *testing.F) {
	dir := f.TempDir()
	_, _, pub := fixture.KeyPair(f, dir, "k")
	_ = pub
	f.Add([]byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\ntrustRoots:\n  - {name: k, keys: [k.pub]}\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [k], threshold: 1}\n    attestations:\n      - {type: review, trustRoots: [k], condition: 'predicate.result == \"approved\"'}\n    licenses: {allow: [MIT]}\n"))
	f.Add([]byte("mode: audit\nrules: [{name: x}]\n"))
	f.Add([]byte("trustRoots: [{name: k, keys: [k.pub], validUntil: 2020-01-01}]\n"))
	f.Add([]byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\ntrustRoots:\n  - {name: k, keys: [k.pub], publishers: [acme], validFrom: 2026-01-01T00:00:00Z}\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [k]}\n    lifecycle: {allowDeprecated: true, authorities: [k]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data, "fuzz.yaml")
		if err == nil {
			err = p.LoadKeys(context.Background(), dir)
		}
		if err != nil {
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("error is not ErrInvalidPolicy: %v", err)
			}
			return
		}
		// Whatever loads can be evaluated without panicking.
		if _, err := p.Evaluate(context.Background(), policy.Input{Repository: "r.example/acme/x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Evaluate(context.Background(), policy.Input{Repository: "r.example/acme/xx", Extension: fuzzExt}); err != nil {
			t.Fatal(err)
		}
		_ = p.NextChange(time.Time{})
	})
}
