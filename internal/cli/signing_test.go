package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeySignAttestVerifyInspect(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "cli-pw")
	prefix := filepath.Join(dir, "pub")
	fp := strings.TrimSpace(mustMkt(t, "key", "generate", "--output-prefix", prefix).stdout)
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q", fp)
	}
	if r := mkt(t, "key", "generate", "--output-prefix", prefix); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("overwrite without --force: %+v", r)
	}
	ext := filepath.Join(dir, "ext")
	mustMkt(t, "init", ext, "--kind", "Module", "--name", "acme/signed-cli")
	ref := plain.Ref("acme/signed-cli:0.1.0")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/signed-cli"), ext)

	if r := mkt(t, "verify", "--plain-http", ref, "--key", prefix+".pub"); r.code != 1 || !strings.Contains(r.stdout, "unsigned") {
		t.Fatalf("verify unsigned: %+v", r)
	}
	mustMkt(t, "sign", "--plain-http", ref, "--key", prefix+".key")
	review := filepath.Join(dir, "review.json")
	os.WriteFile(review, []byte(`{"reviewer":"sec","result":"approved","level":"internal"}`), 0o644)
	mustMkt(t, "attest", "--plain-http", ref, "--key", prefix+".key", "--type", "review", "--predicate", review)

	r := mustMkt(t, "verify", "--plain-http", ref, "--key", prefix+".pub", "--require", "review", "--format", "json")
	var res struct {
		Passed bool
		Checks []struct {
			Name   string
			Passed bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Passed || len(res.Checks) != 2 {
		t.Fatalf("verify JSON: %s (%v)", r.stdout, err)
	}
	if r := mkt(t, "verify", "--plain-http", ref, "--key", prefix+".pub", "--require", "terms"); r.code != 1 || !strings.Contains(r.stdout, "no terms attestation") {
		t.Fatalf("verify with a missing attestation: %+v", r)
	}
	if r := mkt(t, "verify", "--plain-http", ref); r.code != 2 {
		t.Fatalf("verify without --key: exit %d", r.code)
	}
	if r := mkt(t, "attest", "--plain-http", ref, "--key", prefix+".key", "--type", "nonsense", "--predicate", review); r.code != 2 {
		t.Fatalf("attest with an unknown type: exit %d", r.code)
	}
	os.WriteFile(review, []byte(`{"reviewer":"sec","level":"internal"}`), 0o644)
	if r := mkt(t, "attest", "--plain-http", ref, "--key", prefix+".key", "--type", "review", "--predicate", review); r.code != 1 || !strings.Contains(r.stderr, "result") {
		t.Fatalf("attest an invalid review: %+v", r)
	}
	out := filepath.Join(dir, "pulled")
	mustMkt(t, "pull", "--plain-http", ref, "-o", out, "--key", prefix+".pub")
	other := filepath.Join(dir, "other")
	mustMkt(t, "key", "generate", "--output-prefix", other)
	if r := mkt(t, "pull", "--plain-http", ref, "-o", filepath.Join(dir, "refused"), "--key", other+".pub"); r.code != 1 || !strings.Contains(r.stderr, "verification failed") {
		t.Fatalf("pull --key with a wrong key: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "refused")); !os.IsNotExist(err) {
		t.Fatal("refused pull wrote its target")
	}
	r = mustMkt(t, "inspect", "--plain-http", ref, "--key", prefix+".pub")
	if !strings.Contains(r.stdout, "review") || !strings.Contains(r.stdout, fp[:16]+" (verified)") {
		t.Fatalf("inspect does not list the verified review: %s", r.stdout)
	}
	t.Setenv("COSIGN_PASSWORD", "wrong")
	if r := mkt(t, "sign", "--plain-http", ref, "--key", prefix+".key"); r.code != 1 {
		t.Fatalf("sign with a wrong password: %+v", r)
	}
}
