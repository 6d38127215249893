package index_test

import (
	"context"
	"encoding/json"
	"github.com/connectsoft/marketplace/index"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// Without a publishers: entry, names are claimed one by one, so two
// tenants can each own a name of the namespace acme (acme/crm by acme,
// acme/other by globex, from a repository ending in the name). Each
// publisher token must read statements of its own names only: neither
// sees the other's customers and revenue, nor is paid for them.
func TestStatementsOfASharedNamespaceShowEachTenantOnlyItsNames(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	at := time.Now().UTC().AddDate(0, 0, -1)
	terms := `{"attestations":[{"source":"attestation","predicateType":"https://connectsoft.io/marketplace/terms/v1","verified":true,"fingerprint":"fp",` +
		`"statement":{"predicateType":"https://connectsoft.io/marketplace/terms/v1","predicate":{"license":"MIT","pricing":{"model":"usage","price":2,"currency":"EUR"},` +
		`"revenueShare":{"publisher":80,"platform":20},"effectiveDate":"2020-01-01T00:00:00Z","time":"2020-01-01T00:00:00Z"}}}]}`
	owned := map[string]string{"acme/crm": "acme", "acme/other": "globex"}
	for name, tenant := range owned {
		v := &store.Version{Tenant: tenant, Name: name, Version: "1.0.0", Repository: "reg-" + tenant + "/" + name, Digest: "sha256:" + strings.Repeat("b", 64),
			Kind: "Connector", Visibility: store.Private, Evidence: json.RawMessage(terms)}
		if _, err := st.ClaimName(ctx, name, tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordUsage(ctx, []*store.UsageEvent{{Source: "test", ID: name, At: at, Tenant: "buyer-of-" + tenant, Owner: tenant, Publisher: "acme",
			Name: name, Version: "1.0.0", Digest: v.Digest, Type: store.UsagePull, Quantity: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, tenant := range []string{"acme", "globex"} {
		c, err := index.CreateToken(ctx, st, tenant, []string{"publisher"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		tokens[tenant] = c.Secret
	}
	srv := httptest.NewServer((&index.API{Store: st, Operator: "ops"}).Handler())
	defer srv.Close()
	for _, who := range []string{"acme", "globex"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/statements?period="+at.Format("2006-01"), nil)
		req.Header.Set("Authorization", "Bearer "+tokens[who])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Items []index.StatementEntry }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		for _, e := range body.Items {
			for _, l := range e.Statement.Lines {
				if owned[l.Extension] != who {
					t.Errorf("%s's publisher token reads statement %s with line %s (of %s, bought by %s): another tenant's customer and revenue",
						who, e.Publisher, l.Extension, owned[l.Extension], l.Tenant)
				}
			}
		}
	}
}
