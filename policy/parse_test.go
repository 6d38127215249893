package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/policy"
)

// TestParseNamesKeysAndLoadKeysOpensThem: parsing touches neither files
// nor KMS; a key that does not load is reported by LoadKeys at its line,
// and a policy whose keys are not loaded refuses to evaluate rather than
// trust nothing silently.
func TestParseNamesKeysAndLoadKeysOpensThem(t *testing.T) {
	doc := "apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\ntrustRoots:\n  - name: k\n    keys: [missing.pub, nosuchkms://key]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [k], threshold: 2}\n"
	p, err := policy.Parse([]byte(doc), "p.yaml")
	if err != nil {
		t.Fatalf("parse needs no keys: %v", err)
	}
	if _, err := p.Evaluate(context.Background(), policy.Input{Repository: "r/x"}); err == nil || !strings.Contains(err.Error(), "LoadKeys") {
		t.Fatalf("evaluate before LoadKeys: %v", err)
	}
	err = p.LoadKeys(context.Background(), t.TempDir())
	if !errors.Is(err, policy.ErrInvalidPolicy) {
		t.Fatalf("LoadKeys: %v", err)
	}
	for _, want := range []string{"p.yaml:5:", "trustRoots[0].keys[0]", "missing.pub", "trustRoots[0].keys[1]", "sigstore-kms-nosuchkms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("LoadKeys error lacks %q:\n%v", want, err)
		}
	}
	// A threshold above the keys written is a parse error, before any key loads.
	_, err = policy.Parse([]byte(strings.Replace(doc, "threshold: 2", "threshold: 3", 1)), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), "rules[0].signatures.threshold: 3 is more than the 2 keys") {
		t.Fatalf("threshold: %v", err)
	}
}

// TestLoadKeysCountsDistinctKeysForTheThreshold: two entries naming one
// key are one key.
func TestLoadKeysCountsDistinctKeysForTheThreshold(t *testing.T) {
	w := newWorld(t, "a")
	_, err := w.Policy("trustRoots:\n  - name: k\n    keys: [a.pub, ./a.pub]\nrules:\n  - name: r\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [k], threshold: 2}\n")
	if err == nil || !strings.Contains(err.Error(), "2 is more than the 1 distinct keys") {
		t.Fatalf("duplicate key entries: %v", err)
	}
}
