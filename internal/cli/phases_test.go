package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/testenv"
)

// phase is one of the three example configurations (examples/phases,
// docs/phases.md), run end to end with its own stage policy.
type phase struct {
	stage     string
	publisher string // the namespace that publishes
	key       string // its signing key (keys/<key>.key)
	approvers []string
	// terms: the operator signs terms with an agreement id.
	terms bool
}

var phases = []phase{
	{stage: "internal", publisher: "connectsoft", key: "platform-team"},
	{stage: "enterprise", publisher: "contoso-crm", key: "crm-team", approvers: []string{"security-1"}},
	{stage: "public", publisher: "acme", key: "acme", approvers: []string{"curator-1", "curator-2"}, terms: true},
}

var keyRefs = regexp.MustCompile(`keys/([a-z0-9-]+)\.pub`)

// stageWorld copies a phase's example policy with its registry host made
// the test registry's, and makes every key it names.
func stageWorld(t *testing.T, ph phase) (dir, pol string) {
	t.Helper()
	dir = t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "phases", ph.stage, ph.stage+"-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pol = filepath.Join(dir, ph.stage+"-policy.yaml")
	os.WriteFile(pol, []byte(strings.ReplaceAll(string(raw), "registry.example.com", plain.Host)), 0o644)
	os.Mkdir(filepath.Join(dir, "keys"), 0o755)
	for _, m := range keyRefs.FindAllStringSubmatch(string(raw), -1) {
		if _, err := os.Stat(filepath.Join(dir, "keys", m[1]+".key")); err == nil {
			continue
		}
		mustMkt(t, "key", "generate", "--output-prefix", filepath.Join(dir, "keys", m[1]))
	}
	return dir, pol
}

// TestPhasesEndToEnd runs each phase as docs/phases.md tells it: the
// publisher pushes and signs; the pipeline (mkt review check --attest)
// attests its review; promotion
// is refused while the stage's approvals are missing (a publisher's own
// approval, with its own key, is not one); reviewers approve; the version
// is promoted with all its evidence; Factory installs it from the stage's
// registry with the stage's policy; and stock cosign accepts the
// reviewers' attestations at the destination.
func TestPhasesEndToEnd(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "phase-pw")
	for _, ph := range phases {
		t.Run(ph.stage, func(t *testing.T) {
			dir, pol := stageWorld(t, ph)
			key := func(name string) string { return filepath.Join(dir, "keys", name+".key") }
			name := ph.publisher + "/widget"
			ext := filepath.Join(dir, "ext")
			mustMkt(t, "init", ext, "--kind", "module", "--name", name, "--license", "MIT")
			incoming := plain.Host + "/" + ph.stage + "-incoming/" + name
			mustMkt(t, "push", "--plain-http", incoming, ext)
			ref := incoming + ":0.1.0"
			mustMkt(t, "sign", "--plain-http", ref, "--key", key(ph.key))
			promote := []string{"promote", "--plain-http", ref, "--to", ph.stage, "--registry", plain.Host + "/" + ph.stage,
				"--policy", pol, "--factory-version", "2.4.0", "--format", "json"}

			// Refused before the pipeline's review.
			refused(t, promote, "attestation:review")
			if ph.stage == "public" {
				// The public stage blocks on a missing compatibility
				// certificate by a key the stage trusts (docs/review.md).
				compat := filepath.Join(dir, "compat.json")
				os.WriteFile(compat, []byte(`{"constraint":">=2.0.0 <3.0.0","tested":[{"factory":"2.4.0","result":"passed"}]}`), 0o644)
				mustMkt(t, "attest", "--plain-http", ref, "--key", key("operator"), "--type", "compatibility", "--predicate", compat)
			}
			// The pipeline: mkt review check, attested with the pipeline's key.
			mustMkt(t, "review", "check", "--plain-http", ref, "--stage", ph.stage, "--policy", pol, "--attest", "--key", key("pipeline"))
			if len(ph.approvers) > 0 {
				// The publisher approving its own version is no approval.
				mustMkt(t, "review", "approve", "--plain-http", ref, "--key", key(ph.key), "--stage", ph.stage, "--reviewer", ph.publisher)
				refused(t, promote, "needed distinct keys")
				for _, who := range ph.approvers[:len(ph.approvers)-1] {
					mustMkt(t, "review", "approve", "--plain-http", ref, "--key", key(who), "--stage", ph.stage, "--reviewer", who)
				}
				refused(t, promote, "needed distinct keys")
				last := ph.approvers[len(ph.approvers)-1]
				mustMkt(t, "review", "approve", "--plain-http", ref, "--key", key(last), "--stage", ph.stage, "--reviewer", last, "--notes", "read the code")
			}
			if ph.terms {
				refused(t, promote, "attestation:terms")
				terms := filepath.Join(dir, "terms.json")
				os.WriteFile(terms, []byte(`{"license":"MIT","pricing":{"model":"free"},"agreementId":"AGR-2026-17","effectiveDate":"2026-01-01T00:00:00Z"}`), 0o644)
				mustMkt(t, "attest", "--plain-http", ref, "--key", key("operator"), "--type", "terms", "--predicate", terms)
			}
			r := mustMkt(t, promote...)
			var p struct {
				Promoted    bool
				Destination string
				Related     []json.RawMessage
			}
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || !p.Promoted || p.Destination != plain.Host+"/"+ph.stage+"/"+name+":0.1.0" || len(p.Related) < 2 {
				t.Fatalf("promotion: %v %+v\n%s", err, p, r.stdout)
			}
			out := filepath.Join(dir, "factory")
			mustMkt(t, "install", "--plain-http", name, "--registry", plain.Host+"/"+ph.stage, "--policy", pol, "--factory-version", "2.4.0",
				"-o", out, "--lockfile", filepath.Join(dir, "extensions.lock"))
			if _, err := os.Stat(filepath.Join(out, ph.publisher, "widget", "extension.yaml")); err != nil {
				t.Fatalf("Factory did not install the promoted version: %v", err)
			}
			for _, who := range append([]string{"pipeline"}, ph.approvers...) {
				cosignVerifiesReview(t, filepath.Join(dir, "keys", who+".pub"), p.Destination)
			}
		})
	}
}

// refused runs a promotion that must be refused for check, with the
// decision in its one JSON document and nothing copied.
func refused(t *testing.T, promote []string, check string) {
	t.Helper()
	r := mkt(t, promote...)
	var doc struct {
		Promoted bool
		Decision struct {
			Checks []struct {
				Name, Reason string
				Passed       bool
			}
		}
		Error struct{ Code string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || doc.Promoted || doc.Error.Code != codeNotPromoted {
		t.Fatalf("promotion not refused: exit %d %v\n%s", r.code, err, r.stdout)
	}
	for _, c := range doc.Decision.Checks {
		if !c.Passed && strings.Contains(c.Name+" "+c.Reason, check) {
			return
		}
	}
	t.Fatalf("the refusal does not fail on %q: %s", check, r.stdout)
}

// cosignVerifiesReview runs stock cosign verify-attestation on ref's
// review attestations with pub.
func cosignVerifiesReview(t *testing.T, pub, ref string) {
	t.Helper()
	home := t.TempDir()
	cosign, err := testenv.NewTool("cosign", home)
	if err != nil {
		t.Fatal(err)
	}
	cosign.Dir = home
	out, err := cosign.Run(context.Background(), "verify-attestation", "--key", pub, "--type", "https://connectsoft.io/marketplace/review/v1",
		"--insecure-ignore-tlog=true", "--allow-http-registry", ref)
	if err != nil || !strings.Contains(out, "payload") {
		t.Fatalf("stock cosign verify-attestation refused %s's review of %s: %v\n%s", filepath.Base(pub), ref, err, out)
	}
}
