package index_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

func writeConfig(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "index.yaml")
	os.WriteFile(p, []byte(body), 0o644)
	return p
}

func TestLoadConfigExpandsEnvironmentAndChecks(t *testing.T) {
	t.Setenv("MKT_TEST_SECRET", "s3cret")
	c, err := index.LoadConfig(writeConfig(t, `store: sqlite://./index.db
webhookSecret: ${MKT_TEST_SECRET}
sources:
  - name: acme
    registry: registry.example.com
    repositories: ["acme/**"]
    tenant: acme
    visibility: private
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookSecret != "s3cret" || c.Listen != "127.0.0.1:8080" || c.Sources[0].Interval != 5*time.Minute {
		t.Fatalf("config %+v", c)
	}
	if !c.Sources[0].Matches("registry.example.com", "acme/crm") || c.Sources[0].Matches("registry.example.com", "globex/crm") || c.Sources[0].Matches("other", "acme/crm") {
		t.Fatal("source matching is wrong")
	}
	cases := map[string]string{
		"store: sqlite://x\nwebhookSecret: ${MKT_TEST_UNSET_VAR}\n": "MKT_TEST_UNSET_VAR",
		"store: sqlite://x\nsourcs: []\n":                           `unknown field "sourcs"`,
		"sources: []\n":                                             "store: required",
		"store: sqlite://x\nsources:\n  - {name: a, registry: r, repositories: [x], tenant: t, visibility: secret}\n":      `"secret": want internal, private or public`,
		"store: sqlite://x\nsources:\n  - {name: a, registry: r, repositories: [\"[x\"], tenant: t, visibility: public}\n": "not a valid glob",
	}
	for body, want := range cases {
		if _, err := index.LoadConfig(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error with %q, got %v", body, want, err)
		}
	}
}

// publishers: entries are checked at load: a typo in a namespace, a
// missing tenant or repository, a bad glob, an unknown tier, a namespace
// bound twice, or a key that does not load fails the start, naming the
// field.
func TestLoadConfigChecksPublishers(t *testing.T) {
	dir := t.TempDir()
	_, pubKey, _ := fixture.KeyPair(t, dir, "acme")
	good := `store: sqlite://x
publicURL: https://index.example.com
publishers:
  - name: acme
    tenant: acme
    repositories: ["registry.example.com/acme/**"]
    keys: [acme.pub]
    tier: verified
  - {name: globex, tenant: globex, repositories: ["registry.example.com/globex/**"]}
`
	p := filepath.Join(dir, "index.yaml")
	os.WriteFile(p, []byte(good), 0o644)
	c, err := index.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Publishers) != 2 || c.Publishers[1].Tier != "community" || len(c.Publishers[0].Fingerprints) != 1 || c.Publishers[0].Fingerprints[0] != pubKey.Fingerprint {
		t.Fatalf("publishers %+v", c.Publishers)
	}
	if !c.Publishers[0].Binds("registry.example.com/acme/crm") || c.Publishers[0].Binds("registry.example.com/evil/acme/crm") {
		t.Fatal("publisher binding is wrong")
	}
	pub := func(entry string) string { return "store: sqlite://x\npublishers:\n  - " + entry + "\n" }
	ok := `tenant: acme, repositories: ["r.example/acme/**"]`
	for body, want := range map[string]string{
		pub(`{name: Acme, ` + ok + `}`):                                         `publishers[0].name: "Acme": want a publisher namespace`,
		pub(`{name: acme, repositories: ["r.example/acme/**"]}`):                "publishers[0].tenant: required",
		pub(`{name: acme, tenant: acme}`):                                       "publishers[0].repositories: required",
		pub(`{name: acme, tenant: acme, repositories: ["[x/**"]}`):              `publishers[0].repositories[0]: "[x/**" is not a glob`,
		pub(`{name: acme, ` + ok + `, tier: gold}`):                             `publishers[0].tier: "gold": want official, verified or community`,
		pub(`{name: acme, ` + ok + `, keys: [missing.pub]}`):                    "publishers[0].keys[0]: load public key",
		pub(`{name: acme, `+ok+`}`) + "  - {name: acme, " + ok + "}\n":          `publishers[1].name: "acme" is bound twice`,
		"store: sqlite://x\npublicURL: \"javascript:alert(1)\"\n":               "publicURL",
		"store: sqlite://x\nidleTimeout: -1s\n":                                 "idleTimeout: -1s: want a positive duration",
		pub(`{name: acme, `+ok+`, keys: [awskms:///alias/acme]}`) + "oops: 1\n": `unknown field "oops"`,
	} {
		if _, err := index.LoadConfig(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error with %q, got %v", body, want, err)
		}
	}
}

// TestDevTrustFromARelativeDirectoryIsFoundElsewhere: `mkt dev up --dev-dir d`
// failed with "load policy: open /tmp/mkt-dev-index-…/d/dev-policy.yaml": the
// relative paths it returned were read from the dev index's own directory.
func TestDevTrustFromARelativeDirectoryIsFoundElsewhere(t *testing.T) {
	t.Chdir(t.TempDir())
	trust, err := index.WriteDevTrust("dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{trust.Key, trust.PublicKey, trust.Policy} {
		if !filepath.IsAbs(p) {
			t.Fatalf("%s is relative", p)
		}
	}
	t.Chdir(t.TempDir()) // somewhere else, as the dev index is
	if _, err := os.Stat(trust.Policy); err != nil {
		t.Fatalf("the dev policy is not found from another directory: %v", err)
	}
}

// queue: tunes the ingest queue; what would run an event twice at once
// (a rescue before the attempt's own timeout) or means nothing is refused,
// naming the field.
func TestLoadConfigQueueSettings(t *testing.T) {
	c, err := index.LoadConfig(writeConfig(t, "store: sqlite://x\nqueue: {workers: 8, pollInterval: 250ms, attemptTimeout: 30s, rescueAfter: 90s, maxAttempts: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Queue; q.Workers != 8 || q.PollInterval != 250*time.Millisecond || q.AttemptTimeout != 30*time.Second || q.RescueAfter != 90*time.Second || q.MaxAttempts != 3 {
		t.Fatalf("queue settings %+v", q)
	}
	cases := map[string]string{
		"store: sqlite://x\nqueue: {workers: -1}\n":                         "queue.workers: -1: want a positive number",
		"store: sqlite://x\nqueue: {rescueAfter: 30s}\n":                    "queue.rescueAfter: 30s: must exceed queue.attemptTimeout (1m0s)",
		"store: sqlite://x\nqueue: {attemptTimeout: 2m, rescueAfter: 1m}\n": "must exceed queue.attemptTimeout (2m0s)",
		"store: sqlite://x\nqueue: {pollInterval: -1s}\n":                   "queue.pollInterval: -1s: want a positive duration",
		"store: sqlite://x\nqueue: {worker: 3}\n":                           `unknown field "worker"`,
	}
	for body, want := range cases {
		if _, err := index.LoadConfig(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error with %q, got %v", body, want, err)
		}
	}
}

func TestLoadConfigSubscriptions(t *testing.T) {
	t.Setenv("HOOK_SECRET", "a-secret-of-enough-length")
	c, err := index.LoadConfig(writeConfig(t, "store: sqlite://x\nsubscriptions:\n  - {name: sec, url: https://hooks.example.com/mkt, secret: \"${HOOK_SECRET}\", events: [version.yanked, control.blocked], tenant: acme}\ndelivery: {maxAttempts: 20, backoff: 2s, maxBackoff: 1h, timeout: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Subscriptions[0]; s.Secret != "a-secret-of-enough-length" || len(s.Events) != 2 || s.Tenant != "acme" || c.Delivery.MaxAttempts != 20 || c.Delivery.MaxBackoff != time.Hour {
		t.Fatalf("subscriptions %+v, delivery %+v", c.Subscriptions, c.Delivery)
	}
	cases := map[string]string{
		"store: sqlite://x\nsubscriptions: [{name: a, url: ftp://x, secret: aaaaaaaaaaaaaaaa}]\n":                                                        `subscriptions[0].url: "ftp://x": want an http:// or https:// URL`,
		"store: sqlite://x\nsubscriptions: [{name: a, url: https://x, secret: short}]\n":                                                                 "subscriptions[0].secret: required, at least 16 characters",
		"store: sqlite://x\nsubscriptions: [{name: a, url: https://x, secret: aaaaaaaaaaaaaaaa, events: [version.pushed]}]\n":                            `subscriptions[0].events[0]: "version.pushed": want one of version.published`,
		"store: sqlite://x\nsubscriptions: [{name: a, url: https://x, secret: aaaaaaaaaaaaaaaa}, {name: a, url: https://y, secret: aaaaaaaaaaaaaaaa}]\n": "subscriptions[1].name: required and unique",
		"store: sqlite://x\ndelivery: {backoff: -1s}\n":                                                                                                  "delivery.backoff: -1s: want a positive duration",
	}
	for body, want := range cases {
		if _, err := index.LoadConfig(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error with %q, got %v", body, want, err)
		}
	}
}
