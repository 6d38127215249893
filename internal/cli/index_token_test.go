package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
)

// TestIndexTokensListExpireAndRevokeWithoutTheWebhookSecret administers
// tokens with a config whose webhook secret is not in the environment:
// create (with and without --expires), list and revoke all work, each
// prints one JSON document with --format json, and the API refuses the
// revoked token with 401 and accepts the others.
func TestIndexTokensListExpireAndRevokeWithoutTheWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "index.yaml")
	os.WriteFile(config, []byte("store: sqlite://index.db\nwebhookSecret: ${MKT_TEST_UNSET_SECRET}\n"), 0o644)
	os.Unsetenv("MKT_TEST_UNSET_SECRET")
	if r := mkt(t, "index", "serve", "--config", config); r.code == 0 || !strings.Contains(r.stderr, "MKT_TEST_UNSET_SECRET") {
		t.Fatalf("the server itself still needs the secret: %+v", r)
	}

	type created struct {
		Token, ID, Tenant, State string
		Roles                    []string
		ExpiresAt                time.Time
	}
	create := func(args ...string) created {
		t.Helper()
		r := mustMkt(t, append([]string{"--format", "json", "index", "token", "create", "--config", config}, args...)...)
		var c created
		if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
			t.Fatalf("token create --format json printed %q: %v", r.stdout, err)
		}
		return c
	}
	forever := create("--tenant", "acme", "--roles", "reader")
	soon := create("--tenant", "acme", "--roles", "reader,publisher", "--expires", "90d")
	other := create("--tenant", "globex", "--roles", "reader", "--expires", "2100-01-31")
	if !strings.HasPrefix(forever.Token, "mkt_") || len(forever.ID) != 16 || !forever.ExpiresAt.IsZero() {
		t.Fatalf("created %+v", forever)
	}
	if d := time.Until(soon.ExpiresAt); d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Fatalf("--expires 90d expires in %s", d)
	}
	if !other.ExpiresAt.Equal(time.Date(2100, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("--expires 2100-01-31 expires at %s", other.ExpiresAt)
	}
	if r := mkt(t, "index", "token", "create", "--config", config, "--tenant", "acme", "--roles", "reader", "--expires", "soon"); r.code != 2 {
		t.Fatalf("a bad --expires: %+v", r)
	}
	if r := mkt(t, "index", "token", "create", "--config", config, "--tenant", "acme", "--roles", "reader", "--expires", "3000-01-01"); r.code != 1 || !strings.Contains(r.stderr, "after 2200") {
		t.Fatalf("an expiry past what the store keeps: %+v", r)
	}

	list := func(args ...string) []created {
		t.Helper()
		r := mustMkt(t, append([]string{"--format", "json", "index", "token", "list", "--config", config}, args...)...)
		var l struct{ Items []created }
		if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
			t.Fatalf("token list --format json printed %q: %v", r.stdout, err)
		}
		for _, c := range l.Items {
			if c.Token != "" {
				t.Fatalf("token list shows a token: %+v", c)
			}
		}
		return l.Items
	}
	if acme := list("--tenant", "acme"); len(acme) != 2 || acme[0].State != "active" || acme[1].State != "active" {
		t.Fatalf("acme's tokens: %+v", acme)
	}
	if all := list(); len(all) != 3 {
		t.Fatalf("all tokens: %+v", all)
	}

	r := mustMkt(t, "--format", "json", "index", "token", "revoke", "--config", config, forever.ID)
	var revoked created
	if err := json.Unmarshal([]byte(r.stdout), &revoked); err != nil || revoked.ID != forever.ID || revoked.State != "revoked" {
		t.Fatalf("revoke printed %q: %v", r.stdout, err)
	}
	if r := mkt(t, "index", "token", "revoke", "--config", config, "0123456789abcdef"); r.code != 1 {
		t.Fatalf("revoking an unknown ID: %+v", r)
	}
	states := map[string]string{}
	for _, c := range list() {
		states[c.ID] = c.State
	}
	if states[forever.ID] != "revoked" || states[soon.ID] != "active" || states[other.ID] != "active" {
		t.Fatalf("states after the revocation: %v", states)
	}

	// The API over the same store: the revoked token is refused, the others see their tenant.
	st, err := index.OpenConfigStore(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer((&index.API{Store: st}).Handler())
	defer srv.Close()
	search := func(token string) error {
		_, err := (&client.Client{URL: srv.URL, Token: token}).Search(context.Background(), client.SearchQuery{})
		return err
	}
	if err := search(forever.Token); !errors.Is(err, client.ErrUnauthorized) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked token: %v, want 401 token revoked", err)
	}
	if err := search(soon.Token); err != nil {
		t.Fatalf("a token before its expiry: %v", err)
	}
	// mkt search with the revoked token: the unauthorized code, and what to do.
	t.Setenv("MKT_INDEX_TOKEN", forever.Token)
	r = mkt(t, "--format", "json", "search", "crm", "--index", srv.URL)
	var failure struct {
		Error struct{ Code, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &failure); err != nil || r.code != 1 || failure.Error.Code != "unauthorized" ||
		!strings.Contains(failure.Error.Message, "token revoked") || !strings.Contains(failure.Error.Hint, "MKT_INDEX_TOKEN") {
		t.Fatalf("search with a revoked token: %+v", r)
	}
}
