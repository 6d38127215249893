package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// A publisher shows as verified only when the operator's publisher/v1
// attestation verifies with an operator key and states exactly the
// binding the config makes: another key's statement, a statement for
// another tier, or for other keys, leaves the tier claimed and unverified.
func TestPublisherIsVerifiedOnlyByTheOperatorsStatementOfItsBinding(t *testing.T) {
	dir := t.TempDir()
	operator, _, _ := fixture.KeyPair(t, dir, "operator")
	evil, _, _ := fixture.KeyPair(t, dir, "evil")
	_, acmeKey, _ := fixture.KeyPair(t, dir, "acme")
	_, otherKey, _ := fixture.KeyPair(t, dir, "other")
	write := func(file string, s *signing.Signer, p signing.Publisher) {
		env, err := signing.AttestPublisher(context.Background(), s, &p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, file), env, 0o644)
	}
	write("good.json", operator, signing.Publisher{Name: "acme", Tenant: "acme", Tier: "verified", Keys: []string{acmeKey.Fingerprint}})
	write("evil.json", evil, signing.Publisher{Name: "acme", Tenant: "acme", Tier: "verified", Keys: []string{acmeKey.Fingerprint}})
	write("tier.json", operator, signing.Publisher{Name: "acme", Tenant: "acme", Tier: "verified", Keys: []string{acmeKey.Fingerprint}})
	write("keys.json", operator, signing.Publisher{Name: "acme", Tenant: "acme", Tier: "verified", Keys: []string{otherKey.Fingerprint}})
	write("tenant.json", operator, signing.Publisher{Name: "acme", Tenant: "evil", Tier: "verified", Keys: []string{acmeKey.Fingerprint}})
	for _, c := range []struct {
		file, tier string
		verified   bool
		note       string
	}{
		{"good.json", "verified", true, "verified by the operator's key"},
		{"evil.json", "verified", false, "no operator key verifies it"},
		{"tier.json", "official", false, "no operator key verifies it"}, // the config claims more than was stated
		{"keys.json", "verified", false, "no operator key verifies it"},
		{"tenant.json", "verified", false, "no operator key verifies it"},
		{"", "official", false, "no operator attestation"},
	} {
		t.Run(c.file+c.tier, func(t *testing.T) {
			verification := ""
			if c.file != "" {
				verification = "\n    verification: " + c.file
			}
			cfg := filepath.Join(dir, "index.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("store: sqlite://x.db\noperatorKeys: [operator.pub]\npublishers:\n  - name: acme\n    tenant: acme\n"+
				"    repositories: [\"r.example.com/acme/**\"]\n    keys: [acme.pub]\n    tier: %s%s\n", c.tier, verification)), 0o644)
			conf, err := index.LoadConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := conf.Publishers[0]
			if p.Verified != c.verified || !strings.Contains(p.VerificationNote, c.note) {
				t.Fatalf("verified %v (%s), want %v (%q)", p.Verified, p.VerificationNote, c.verified, c.note)
			}
		})
	}

	// The publisher page: tier, verification, keys, and only the
	// extensions the caller may see.
	cfg := filepath.Join(dir, "index.yaml")
	os.WriteFile(cfg, []byte("store: sqlite://x.db\noperatorKeys: [operator.pub]\npublishers:\n  - name: acme\n    tenant: acme\n"+
		"    repositories: [\"r.example.com/acme/**\"]\n    keys: [acme.pub]\n    tier: verified\n    verification: good.json\n"), 0o644)
	conf, err := index.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.SQLite(t)
	ctx := context.Background()
	for _, v := range []*store.Version{
		{Tenant: "acme", Name: "acme/widget", Version: "1.0.0", Repository: "r.example.com/acme/widget", Digest: "sha256:" + strings.Repeat("a", 64), Kind: "Module", Visibility: store.Public},
		{Tenant: "acme", Name: "acme/secret", Version: "1.0.0", Repository: "r.example.com/acme/secret", Digest: "sha256:" + strings.Repeat("b", 64), Kind: "Module", Visibility: store.Private},
	} {
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, rec, _ := index.NewToken("acme", []string{"reader"})
	st.PutToken(ctx, rec)
	srv := httptest.NewServer((&index.API{Store: st, Publishers: conf.Publishers}).Handler())
	defer srv.Close()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var pg index.PublisherPage
	_, body := get("/api/v1/publishers/acme", "")
	if err := json.Unmarshal([]byte(body), &pg); err != nil || pg.Tier != "verified" || !pg.Verified || len(pg.Keys) != 1 || pg.Keys[0] != acmeKey.Fingerprint ||
		pg.Total != 1 || pg.Extensions[0].Name != "acme/widget" {
		t.Fatalf("anonymous publisher page: %v %s", err, body)
	}
	if _, body := get("/api/v1/publishers/acme", tok); !strings.Contains(body, "acme/secret") || !strings.Contains(body, `"total":2`) {
		t.Fatalf("acme's own page lacks its private extension: %s", body)
	}
	if code, _ := get("/api/v1/publishers/nobody", ""); code != 404 {
		t.Fatalf("an unknown publisher: %d", code)
	}
	if code, page := get("/publishers/acme", ""); code != 200 || !strings.Contains(page, `data-verified="true"`) || strings.Contains(page, "acme/secret") {
		t.Fatalf("web publisher page: %d\n%s", code, page)
	}
}
