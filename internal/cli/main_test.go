package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/internal/cli/servercmd"
	"github.com/connectsoft/marketplace/testenv"
)

var (
	plain  *testenv.Registry
	tlsReg *testenv.Registry
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.Distribution(&plain, testenv.DistributionOptions{}),
		testenv.Distribution(&tlsReg, testenv.DistributionOptions{TLS: true, Username: "alice", Password: "wonderland"})))
}

type mktRun struct {
	code           int
	stdout, stderr string
}

// run runs mkt in process as mkt-server does, with the server commands in
// process too, minus os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, args, nil, stdout, stderr, inProcess, false)
}

// inProcess is run's server commands: nil runs mkt-server as mkt does.
var inProcess serverapi.Commands = servercmd.Commands{}

// mkt runs the command in-process exactly as main does, minus os.Exit.
func mkt(t testing.TB, args ...string) mktRun {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return mktRun{code, out.String(), errb.String()}
}

func mustMkt(t testing.TB, args ...string) mktRun {
	t.Helper()
	r := mkt(t, args...)
	if r.code != 0 {
		t.Fatalf("mkt %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"version"}, 0},
		{[]string{"--bogus"}, 2},
		{[]string{"push"}, 2},
		{[]string{"pull", "x"}, 2},
		{[]string{"version", "--format", "yaml"}, 2},
		{[]string{"nosuchcommand"}, 2},
		{[]string{"init", t.TempDir(), "--kind", "Plugin", "--name", "acme/x"}, 2},
		{[]string{"inspect", "--plain-http", plain.Ref("none/such:1.0.0")}, 1},
		{[]string{"push", "--plain-http", plain.Ref("acme/empty"), t.TempDir()}, 1},
	}
	for _, tc := range cases {
		if r := mkt(t, tc.args...); r.code != tc.want {
			t.Errorf("mkt %v: exit %d, want %d\nstderr: %s", tc.args, r.code, tc.want, r.stderr)
		} else if tc.want != 0 && !strings.HasPrefix(r.stderr, "mkt: ") {
			t.Errorf("mkt %v: failure not explained on stderr: %q", tc.args, r.stderr)
		}
	}
}

func TestInitPushInspectPullCopy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crm")
	mustMkt(t, "init", dir, "--kind", "connector", "--name", "acme/crm")
	if r := mkt(t, "init", dir, "--kind", "connector", "--name", "acme/crm"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second init: %+v", r)
	}
	ref := plain.Ref("acme/crm")
	r := mustMkt(t, "push", "--plain-http", ref, dir, "--format", "json")
	var pushed map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil {
		t.Fatalf("push --format json printed %q: %v", r.stdout, err)
	}
	for _, k := range []string{"reference", "digest", "mediaType", "artifactType", "size"} {
		if pushed[k] == nil || pushed[k] == "" {
			t.Errorf("push JSON lacks %s: %s", k, r.stdout)
		}
	}
	if pushed["reference"] != ref+":0.1.0" || pushed["artifactType"] != "application/vnd.connectsoft.connector.v1" {
		t.Fatalf("push JSON: %s", r.stdout)
	}
	digest := pushed["digest"].(string)

	r = mustMkt(t, "inspect", "--plain-http", ref+":0.1.0", "--format", "json")
	var in struct {
		Digest    string `json:"digest"`
		Extension struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"extension"`
	}
	json.Unmarshal([]byte(r.stdout), &in)
	if in.Digest != digest || in.Extension.Metadata.Name != "acme/crm" {
		t.Fatalf("inspect JSON: %s", r.stdout)
	}
	if r := mustMkt(t, "inspect", "--plain-http", ref+"@"+digest); !strings.Contains(r.stdout, "acme/crm 0.1.0") {
		t.Fatalf("inspect text: %s", r.stdout)
	}

	out := filepath.Join(t.TempDir(), "out")
	mustMkt(t, "pull", "--plain-http", ref+":0.1.0", "-o", out)
	if _, err := os.Stat(filepath.Join(out, "connector", "main.yaml")); err != nil {
		t.Fatalf("pulled tree lacks the entrypoint: %v", err)
	}
	if r := mkt(t, "pull", "--plain-http", ref+":0.1.0", "-o", out); r.code != 1 || !strings.Contains(r.stderr, "not empty") {
		t.Fatalf("pull into non-empty dir: %+v", r)
	}

	layout := filepath.Join(t.TempDir(), "airgap")
	mustMkt(t, "copy", "--plain-http", ref+":0.1.0", layout+":0.1.0", "--to-oci-layout")
	mustMkt(t, "copy", "--plain-http", layout+":0.1.0", plain.Ref("mirror/acme/crm:0.1.0"), "--from-oci-layout")
	r = mustMkt(t, "inspect", "--plain-http", plain.Ref("mirror/acme/crm:0.1.0"), "--format", "json")
	json.Unmarshal([]byte(r.stdout), &in)
	if in.Digest != digest {
		t.Fatalf("copy through a layout changed the digest: %s vs %s", in.Digest, digest)
	}
}

func TestPushRefusesToMoveAVersionUnlessForced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mod")
	mustMkt(t, "init", dir, "--kind", "Module", "--name", "acme/immutable")
	ref := plain.Ref("acme/immutable")
	mustMkt(t, "push", "--plain-http", ref, dir)
	os.WriteFile(filepath.Join(dir, "module", "main.yaml"), []byte("changed: true\n"), 0o644)
	r := mkt(t, "push", "--plain-http", ref, dir)
	if r.code != 1 || !strings.Contains(r.stderr, "versions are immutable") {
		t.Fatalf("moving a version: %+v", r)
	}
	r = mustMkt(t, "push", "--plain-http", ref, dir, "--force", "--format", "json")
	if !strings.Contains(r.stdout, `"replaced"`) {
		t.Fatalf("forced push did not report the replaced digest: %s", r.stdout)
	}
}

func TestSourceDateEpochSetsCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tpl")
	mustMkt(t, "init", dir, "--kind", "Template", "--name", "acme/dated")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	mustMkt(t, "push", "--plain-http", plain.Ref("acme/dated"), dir)
	r := mustMkt(t, "inspect", "--plain-http", plain.Ref("acme/dated:0.1.0"), "--format", "json")
	if !strings.Contains(r.stdout, `"org.opencontainers.image.created": "2026-01-01T00:00:00Z"`) {
		t.Fatalf("created annotation missing: %s", r.stdout)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if r := mkt(t, "push", "--plain-http", plain.Ref("acme/dated"), dir); r.code != 2 {
		t.Fatalf("bad SOURCE_DATE_EPOCH: %+v", r)
	}
}

func TestLoginPushLogout(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "config.json")
	flags := []string{"--ca-file", tlsReg.CAFile, "--registry-config", conf}
	dir := filepath.Join(t.TempDir(), "agent")
	mustMkt(t, "init", dir, "--kind", "Agent", "--name", "acme/helper")

	r := mkt(t, append([]string{"push", tlsReg.Ref("acme/helper"), dir}, flags...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "mkt login") {
		t.Fatalf("push without login: %+v", r)
	}
	if r := mkt(t, append([]string{"login", tlsReg.Host, "-u", "alice", "-p", "wrong"}, flags...)...); r.code != 1 {
		t.Fatalf("login with a wrong password: %+v", r)
	}
	mustMkt(t, append([]string{"login", tlsReg.Host, "-u", "alice", "-p", "wonderland"}, flags...)...)
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), tlsReg.Host) {
		t.Fatalf("login did not store credentials: %s", b)
	}
	mustMkt(t, append([]string{"push", tlsReg.Ref("acme/helper"), dir}, flags...)...)
	if r := mkt(t, "inspect", tlsReg.Ref("acme/helper:0.1.0"), "--registry-config", conf); r.code != 1 || !strings.Contains(r.stderr, "--ca-file") {
		t.Fatalf("untrusted CA: %+v", r)
	}
	mustMkt(t, append([]string{"logout", tlsReg.Host}, flags...)...)
	if r := mkt(t, append([]string{"inspect", tlsReg.Ref("acme/helper:0.1.0")}, flags...)...); r.code != 1 {
		t.Fatalf("inspect after logout: %+v", r)
	}
}

func TestDevUpServesARegistryAndAnIndex(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "addr")
	idx := filepath.Join(t.TempDir(), "index")
	devDir := t.TempDir() // the dev key and policy, never the user's own ~/.config/mkt/dev
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		var out bytes.Buffer
		done <- run(ctx, []string{"dev", "up", "--listen", "127.0.0.1:0", "--index-listen", "127.0.0.1:0", "--addr-file", addr, "--index-addr-file", idx,
			"--dev-dir", devDir}, &out, &errb)
	}()
	// Dev up makes a key pair and opens a store before it listens: under the
	// race detector on a loaded machine that took more than the 4 s this
	// test once allowed, so wait for the addresses as for any condition.
	var host, url []byte
	waitFor(t, "dev up to write its addresses", func() bool {
		select {
		case code := <-done:
			t.Fatalf("dev up exited %d before listening: %s", code, errb.String())
		default:
		}
		host, _ = os.ReadFile(addr)
		url, _ = os.ReadFile(idx)
		return len(host) > 0 && len(url) > 0
	})
	dir := filepath.Join(t.TempDir(), "m")
	mustMkt(t, "init", dir, "--kind", "Module", "--name", "acme/devup")
	mustMkt(t, "push", "--plain-http", strings.TrimSpace(string(host))+"/acme/devup", dir)
	waitFor(t, "the push to reach the embedded index", func() bool {
		return strings.Contains(mkt(t, "search", "devup", "--index", strings.TrimSpace(string(url))).stdout, "acme/devup")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dev up exited %d", code)
	}
}

func TestPullFromRegistryThatNeverAnswersNamesTheTimeoutFlag(t *testing.T) {
	s, err := testenv.StartSilentListener()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	r := mkt(t, "pull", "--plain-http", "--timeout", "1s", s.Host+"/acme/widget:1.0.0", "-o", filepath.Join(t.TempDir(), "out"))
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("mkt pull took %s with --timeout 1s", took)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "did not answer within 1s") || !strings.Contains(r.stderr, "raise --timeout") {
		t.Fatalf("want exit 1 saying the registry did not answer and naming --timeout, got %d:\n%s", r.code, r.stderr)
	}
}

// A title is the publisher's text: inspect shows its control characters
// escaped, so it cannot draw a fake "verified" line on the terminal.
func TestInspectEscapesTerminalControlsInTitles(t *testing.T) {
	dir := t.TempDir()
	yaml := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: acme/escapes\n  version: 1.0.0\n" +
		"  title: \"Widget \\e[32m✔ verified\\e[0m\\r\"\n  description: \"line one\\nSignatures: verified by security-team\"\n" +
		"spec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n"
	if err := os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := plain.Ref("acme/escapes:1.0.0")
	mustMkt(t, "push", "--plain-http", ref, dir)
	r := mustMkt(t, "inspect", "--plain-http", ref)
	if strings.ContainsAny(r.stdout, "\x1b\r") {
		t.Fatalf("inspect printed raw control characters:\n%q", r.stdout)
	}
	for _, want := range []string{`Title:          Widget \x1b[32m✔ verified\x1b[0m\r`, `Description:    line one\nSignatures: verified by security-team`} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
}
