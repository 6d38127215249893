package index_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// TestStatementsAPIShowsAPublisherOnlyItsOwn (and the web page, from the
// same entries and tokens): acme's publisher token reads
// acme's statement and is refused globex's (as if globex did not exist);
// a reader token and anonymous callers get none; the operator's admin
// token reads both.
func TestStatementsAPIShowsAPublisherOnlyItsOwn(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	at := time.Now().UTC().AddDate(0, 0, -1)
	terms := `{"attestations":[{"source":"attestation","predicateType":"https://connectsoft.io/marketplace/terms/v1","verified":true,"fingerprint":"fp",` +
		`"statement":{"predicateType":"https://connectsoft.io/marketplace/terms/v1","predicate":{"license":"MIT","pricing":{"model":"usage","price":2,"currency":"EUR"},` +
		`"revenueShare":{"publisher":80,"platform":20},"effectiveDate":"2020-01-01T00:00:00Z","time":"2020-01-01T00:00:00Z"}}}]}`
	for i, tenant := range []string{"acme", "globex"} {
		name := tenant + "/crm"
		v := &store.Version{Tenant: tenant, Name: name, Version: "1.0.0", Repository: "reg/" + name, Digest: "sha256:" + strings.Repeat("b", 64),
			Kind: "Connector", Visibility: store.Private, Evidence: json.RawMessage(terms)}
		if _, err := st.ClaimName(ctx, name, tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordUsage(ctx, []*store.UsageEvent{{Source: "test", ID: name, At: at, Tenant: "buyer", Owner: tenant, Publisher: tenant,
			Name: name, Version: "1.0.0", Digest: v.Digest, Type: store.UsagePull, Quantity: int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for key, tr := range map[string]struct {
		tenant string
		roles  []string
	}{"acme": {"acme", []string{"publisher"}}, "globex": {"globex", []string{"publisher"}}, "reader": {"acme", []string{"reader"}},
		"ops": {"ops", []string{"admin"}}, "ops-reader": {"ops", []string{"reader"}}} {
		c, err := index.CreateToken(ctx, st, tr.tenant, tr.roles, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		tokens[key] = c.Secret
	}
	api := &index.API{Store: st, Operator: "ops"}
	srv := httptest.NewServer(api.Handler()) // the API and the pages
	defer srv.Close()
	period := at.Format("2006-01")
	get := func(who, query string) (int, []index.StatementEntry) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/statements?period="+period+query, nil)
		if who != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[who])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Items []index.StatementEntry }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Items
	}
	publishers := func(items []index.StatementEntry) string {
		var ps []string
		for _, e := range items {
			ps = append(ps, e.Publisher)
		}
		return strings.Join(ps, ",")
	}
	if code, items := get("acme", ""); code != 200 || publishers(items) != "acme" || items[0].Statement.Totals[0].Gross != "2.00" {
		t.Fatalf("acme's own: %d %+v", code, items)
	}
	if code, items := get("acme", "&publisher=globex"); code != http.StatusNotFound || len(items) != 0 {
		t.Fatalf("acme asking for globex's statement: %d %+v", code, items)
	}
	if code, items := get("acme", "&publisher=nobody"); code != http.StatusNotFound || len(items) != 0 {
		t.Fatalf("an unknown publisher: %d", code)
	}
	if code, items := get("globex", ""); code != 200 || publishers(items) != "globex" || items[0].Statement.Totals[0].Gross != "4.00" {
		t.Fatalf("globex's own: %d %+v", code, items)
	}
	if code, _ := get("reader", ""); code != http.StatusForbidden {
		t.Fatalf("a reader token: %d, want 403", code)
	}
	if code, _ := get("ops-reader", ""); code != http.StatusForbidden {
		t.Fatalf("the operator's reader token: %d, want 403", code)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d, want 401", code)
	}
	if code, items := get("ops", ""); code != 200 || publishers(items) != "acme,globex" {
		t.Fatalf("the operator: %d %+v", code, items)
	}
	page := func(who, query string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/statements?period="+period+query, nil)
		if who != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[who])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := page("acme", ""); code != 200 || !strings.Contains(body, `data-publisher="acme"`) || strings.Contains(body, "globex") ||
		!strings.Contains(body, `data-extension="acme/crm"`) || !strings.Contains(body, "Total 2.00 EUR") {
		t.Fatalf("acme's page: %d\n%s", code, body)
	}
	if code, _ := page("acme", "&publisher=globex"); code != http.StatusNotFound {
		t.Fatalf("acme's page of globex: %d", code)
	}
	if code, _ := page("", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous page: %d", code)
	}
	if code, body := page("ops", ""); code != 200 || !strings.Contains(body, `data-publisher="globex"`) || !strings.Contains(body, `data-publisher="acme"`) {
		t.Fatalf("the operator's page: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/statements?period=2026-13", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["acme"])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad period: %v %v", resp.StatusCode, err)
	}
}
