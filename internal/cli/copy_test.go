package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// One copy goes from a plain-HTTP registry to a TLS one that needs
// credentials, signature included, with oras copy's per-side flags; the
// global --plain-http would have applied to both sides.
func TestCopyFromPlainHTTPToTLSRegistryInOneCommand(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	work := t.TempDir()
	dir := filepath.Join(work, "crm")
	mustMkt(t, "init", dir, "--kind", "Connector", "--name", "acme/sides")
	src := plain.Ref("acme/sides:0.1.0")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/sides"), dir)
	prefix := filepath.Join(work, "cosign")
	mustMkt(t, "key", "generate", "--output-prefix", prefix)
	mustMkt(t, "sign", "--plain-http", src, "--key", prefix+".key")
	dst := tlsReg.Ref("mirror/acme/sides:0.1.0")
	noConfig := filepath.Join(work, "config.json")

	// The global flags cannot do it: plain HTTP to the TLS side fails.
	if r := mkt(t, "copy", "--plain-http", "--ca-file", tlsReg.CAFile, "--registry-config", noConfig, src, dst); r.code != 1 {
		t.Fatalf("copy with --plain-http for both sides: %+v, want a failure", r)
	}
	// A username without a password is a usage error.
	if r := mkt(t, "copy", "--from-plain-http", src, dst, "--to-username", tlsReg.Username); r.code != 2 || !strings.Contains(r.stderr, "--to-password") {
		t.Fatalf("copy with --to-username alone: %+v, want usage", r)
	}
	r := mustMkt(t, "copy", "--from-plain-http", src, dst, "--to-ca-file", tlsReg.CAFile, "--registry-config", noConfig,
		"--to-username", tlsReg.Username, "--to-password", tlsReg.Password, "--format", "json")
	var copied struct {
		Digest  string            `json:"digest"`
		Related []json.RawMessage `json:"related"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &copied); err != nil || copied.Digest == "" || len(copied.Related) != 1 {
		t.Fatalf("copy printed %s (%v), want the digest and the signature", r.stdout, err)
	}
	// The mirror verifies by the key, reached over TLS with the credentials
	// in a docker config this time.
	conf := filepath.Join(work, "tls-config.json")
	mustMkt(t, "login", tlsReg.Host, "-u", tlsReg.Username, "-p", tlsReg.Password, "--ca-file", tlsReg.CAFile, "--registry-config", conf)
	mustMkt(t, "verify", tlsReg.Ref("mirror/acme/sides@"+copied.Digest), "--key", prefix+".pub", "--ca-file", tlsReg.CAFile, "--registry-config", conf)
}
