package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/testenv"
)

// decisionKeys are the top-level JSON fields of a printed decision.
func decisionKeys(t *testing.T, out string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestVerifyKeyAndPolicyReportTheSameDecision: verify --key is a key-only
// policy, so its JSON has exactly the fields of verify --policy's.
func TestVerifyKeyAndPolicyReportTheSameDecision(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(dir, "k")
	mustMkt(t, "key", "generate", "--output-prefix", prefix)
	ext := filepath.Join(dir, "ext")
	mustMkt(t, "init", ext, "--kind", "Module", "--name", "acme/same-verdict")
	ref := plain.Ref("acme/same-verdict:0.1.0")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/same-verdict"), ext)
	mustMkt(t, "sign", "--plain-http", ref, "--key", prefix+".key")
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\ntrustRoots:\n  - {name: k, keys: [k.pub]}\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [k]}\n"), 0o644)

	byKey := mustMkt(t, "verify", "--plain-http", ref, "--key", prefix+".pub", "--format", "json")
	byPolicy := mustMkt(t, "verify", "--plain-http", ref, "--policy", pol, "--format", "json")
	if k, p := decisionKeys(t, byKey.stdout), decisionKeys(t, byPolicy.stdout); !reflect.DeepEqual(k, p) {
		t.Fatalf("verify --key prints fields %v, verify --policy %v", k, p)
	}
	var d struct {
		Allowed, Passed bool
		Checks          []struct {
			Name   string
			Passed bool
		}
	}
	json.Unmarshal([]byte(byKey.stdout), &d)
	if !d.Allowed || !d.Passed || len(d.Checks) != 1 || d.Checks[0].Name != "signature" || !d.Checks[0].Passed {
		t.Fatalf("verify --key decision: %s", byKey.stdout)
	}
}

// TestVerifyRequireRefusesReviewsOutsideTheSchema: a review predicate that
// another tool (stock cosign) signed is checked against the review schema,
// so result "maybe" or a missing time is no review.
func TestVerifyRequireRefusesReviewsOutsideTheSchema(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(dir, "k")
	mustMkt(t, "key", "generate", "--output-prefix", prefix)
	cosign, err := testenv.NewTool("cosign", dir)
	if err != nil {
		t.Fatal(err)
	}
	cosign.Dir = dir
	cosign.Env = append(cosign.Env, "COSIGN_PASSWORD=pw")
	cases := []struct{ name, predicate, want string }{
		{"maybe", `{"reviewer":"other-tool","result":"maybe","level":"public","time":"2026-05-01T00:00:00Z"}`, `result "maybe": want approved, rejected or revoked`},
		{"no-time", `{"reviewer":"other-tool","result":"approved","level":"public"}`, "time is required"},
		{"good", `{"reviewer":"other-tool","result":"approved","level":"public","time":"2026-05-01T00:00:00Z"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext := filepath.Join(dir, tc.name)
			mustMkt(t, "init", ext, "--kind", "Module", "--name", "acme/review-"+tc.name)
			ref := plain.Ref("acme/review-" + tc.name + ":0.1.0")
			mustMkt(t, "push", "--plain-http", plain.Ref("acme/review-"+tc.name), ext)
			mustMkt(t, "sign", "--plain-http", ref, "--key", prefix+".key")
			pred := filepath.Join(dir, tc.name+".json")
			os.WriteFile(pred, []byte(tc.predicate), 0o644)
			if out, err := cosign.Run(context.Background(), "attest", "--key", prefix+".key", "--type", "https://connectsoft.io/marketplace/review/v1",
				"--predicate", pred, "--tlog-upload=false", "--allow-http-registry", "--yes", ref); err != nil {
				t.Fatalf("stock cosign attest: %v\n%s", err, out)
			}
			r := mkt(t, "verify", "--plain-http", ref, "--key", prefix+".pub", "--require", "review")
			if tc.want == "" {
				if r.code != 0 {
					t.Fatalf("a valid review from another tool is refused: %+v", r)
				}
				return
			}
			if r.code != 1 || !strings.Contains(r.stdout, "is not a valid review predicate") || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("review %s: want exit 1 naming %q, got %+v", tc.name, tc.want, r)
			}
		})
	}
}

// TestKeyAndPredicateMistakesAreExplained: what mkt prints for the usual
// mistakes names the problem and the remedy, not cosign's internals.
func TestKeyAndPredicateMistakesAreExplained(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "right")
	prefix, other := filepath.Join(dir, "k"), filepath.Join(dir, "other")
	mustMkt(t, "key", "generate", "--output-prefix", prefix)
	mustMkt(t, "key", "generate", "--output-prefix", other)
	ext := filepath.Join(dir, "ext")
	mustMkt(t, "init", ext, "--kind", "Module", "--name", "acme/mistakes")
	ref := plain.Ref("acme/mistakes:0.1.0")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/mistakes"), ext)
	mustMkt(t, "sign", "--plain-http", ref, "--key", prefix+".key")
	terms := filepath.Join(dir, "terms.json")
	os.WriteFile(terms, []byte(`{"license":"MIT","pricing":{"model":"free"},"effectiveDate":"2026-13-01"}`), 0o644)

	if r := mkt(t, "attest", "--plain-http", ref, "--key", prefix+".key", "--type", "terms", "--predicate", terms); r.code != 1 ||
		!strings.Contains(r.stderr, `effectiveDate "2026-13-01" is not a date-time: want RFC 3339`) {
		t.Errorf("bad effectiveDate: %+v", r)
	}
	if r := mkt(t, "sign", "--plain-http", ref, "--key", prefix+".pub"); r.code != 1 ||
		!strings.Contains(r.stderr, "this is a public key; signing needs the private key") {
		t.Errorf("public key given to sign: %+v", r)
	}
	if r := mkt(t, "verify", "--plain-http", ref, "--key", other+".pub"); r.code != 1 ||
		!strings.Contains(r.stdout, "signature not made for this digest by any of the 1 keys tried") || !strings.Contains(r.stdout, other+".pub") ||
		strings.Contains(r.stdout, "threshold, Found") {
		t.Errorf("signature by another key: %+v", r)
	}
	t.Setenv("COSIGN_PASSWORD", "wrong")
	if r := mkt(t, "sign", "--plain-http", ref, "--key", prefix+".key"); r.code != 1 ||
		!strings.Contains(r.stderr, "wrong password") || !strings.Contains(r.stderr, "COSIGN_PASSWORD") || strings.Contains(r.stderr, "decryption failed") {
		t.Errorf("wrong password: %+v", r)
	}
}

// TestVerifyVerboseCountsRequests: -v still says what the evidence cost,
// as verify --key did before it reported a policy decision.
func TestVerifyVerboseCountsRequests(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(dir, "k")
	mustMkt(t, "key", "generate", "--output-prefix", prefix)
	ext := filepath.Join(dir, "ext")
	mustMkt(t, "init", ext, "--kind", "Module", "--name", "acme/verbose")
	ref := plain.Ref("acme/verbose:0.1.0")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/verbose"), ext)
	mustMkt(t, "sign", "--plain-http", ref, "--key", prefix+".key")
	r := mustMkt(t, "verify", "-v", "--plain-http", ref, "--key", prefix+".pub")
	if !strings.Contains(r.stderr, "registry requests for the evidence") {
		t.Fatalf("verify -v: %+v", r)
	}
}
