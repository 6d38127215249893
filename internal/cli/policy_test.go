package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyVerifyPullResolveInstall(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	key := filepath.Join(dir, "acme")
	mustMkt(t, "key", "generate", "--output-prefix", key)
	prefix := plain.Ref("pol")
	publish := func(name, version, deps string, sign bool) {
		ext := filepath.Join(t.TempDir(), "e")
		mustMkt(t, "init", ext, "--kind", "Module", "--name", name, "--version", version)
		if deps != "" {
			b, _ := os.ReadFile(filepath.Join(ext, "extension.yaml"))
			os.WriteFile(filepath.Join(ext, "extension.yaml"), []byte(strings.Replace(string(b), "  dependencies: []\n", "  dependencies:\n"+deps, 1)), 0o644)
		}
		mustMkt(t, "push", "--plain-http", prefix+"/"+name, ext)
		if sign {
			mustMkt(t, "sign", "--plain-http", prefix+"/"+name+":"+version, "--key", key+".key")
		}
	}
	publish("acme/lib", "1.0.0", "", true)
	publish("acme/lib", "1.1.0", "", false) // unsigned: passed over
	publish("acme/app", "1.0.0", "    - {name: acme/lib, version: ^1.0.0}\n", true)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: acme
    match: {repositories: ["%s/**"]}
    signatures: {trustRoots: [acme]}
    compatibility: required
`, prefix)), 0o644)

	r := mustMkt(t, "verify", "--plain-http", prefix+"/acme/lib:1.0.0", "--policy", pol, "--factory-version", "2.4.0", "--format", "json")
	var d struct {
		Allowed bool
		Checks  []struct{ Name string }
	}
	if json.Unmarshal([]byte(r.stdout), &d); !d.Allowed || len(d.Checks) != 2 {
		t.Fatalf("verify --policy: %s", r.stdout)
	}
	if r := mkt(t, "verify", "--plain-http", prefix+"/acme/lib:1.1.0", "--policy", pol, "--factory-version", "2.4.0"); r.code != 1 || !strings.Contains(r.stdout, "DENIED") || !strings.Contains(r.stdout, "unsigned") {
		t.Fatalf("verify --policy of unsigned: %+v", r)
	}
	if r := mkt(t, "verify", "--plain-http", prefix+"/acme/lib:1.0.0", "--policy", pol, "--factory-version", "3.0.0"); r.code != 1 || !strings.Contains(r.stdout, "incompatible") {
		t.Fatalf("verify --policy for Factory 3: %+v", r)
	}
	out := filepath.Join(t.TempDir(), "denied")
	if r := mkt(t, "pull", "--plain-http", prefix+"/acme/lib:1.1.0", "-o", out, "--policy", pol, "--factory-version", "2.4.0"); r.code != 1 || !strings.Contains(r.stderr, "denied by policy") {
		t.Fatalf("pull --policy of unsigned: %+v", r)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a denied pull wrote its target")
	}
	mustMkt(t, "pull", "--plain-http", prefix+"/acme/lib:1.0.0", "-o", out, "--policy", pol, "--factory-version", "2.4.0")

	r = mustMkt(t, "resolve", "--plain-http", "acme/app", "--registry", prefix, "--policy", pol, "--factory-version", "2.4.0", "--explain")
	if !strings.Contains(r.stdout, "acme/lib") || !strings.Contains(r.stdout, "1.0.0") || !strings.Contains(r.stdout, "passed over 1.1.0: signature: unsigned") {
		t.Fatalf("resolve --explain: %s", r.stdout)
	}
	if r := mkt(t, "resolve", "acme/app"); r.code != 2 {
		t.Fatalf("resolve without --registry: exit %d", r.code)
	}

	inst := filepath.Join(t.TempDir(), "extensions")
	lock := filepath.Join(t.TempDir(), "extensions.lock")
	mustMkt(t, "install", "--plain-http", "acme/app@^1.0.0", "--registry", prefix, "--policy", pol, "--factory-version", "2.4.0", "-o", inst, "--lockfile", lock)
	for _, p := range []string{"acme/app/extension.yaml", "acme/lib/extension.yaml"} {
		if _, err := os.Stat(filepath.Join(inst, p)); err != nil {
			t.Fatalf("install: %v", err)
		}
	}
	b, _ := os.ReadFile(lock)
	if !strings.Contains(string(b), `"name": "acme/lib"`) || !strings.Contains(string(b), `"version": "1.0.0"`) {
		t.Fatalf("lockfile: %s", b)
	}
	os.RemoveAll(inst)
	mustMkt(t, "install", "--plain-http", "--locked", "--registry", prefix, "--policy", pol, "--factory-version", "2.4.0", "-o", inst, "--lockfile", lock)
	if after, _ := os.ReadFile(lock); string(after) != string(b) {
		t.Fatal("--locked rewrote the lockfile")
	}
	if r := mkt(t, "install", "acme/app", "--registry", prefix, "-o", inst); r.code != 2 {
		t.Fatalf("install without --policy: exit %d", r.code)
	}
}
