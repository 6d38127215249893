package index_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
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
