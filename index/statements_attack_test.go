package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// Without a publishers: entry, names are claimed one by one, so two
// tenants can each own a name of the namespace acme (acme/crm by acme,
// acme/other by globex, from a repository ending in the name). Each
// publisher token must read statements of its own names only: neither
// sees the other's customers and revenue, nor is paid for them. Both
// stores.
func TestStatementsOfASharedNamespaceShowEachTenantOnlyItsNames(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			st := sc.open(t)
			at := time.Now().UTC().AddDate(0, 0, -1)
			owned := storetest.SharedNamespace(t, st, at)
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
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s's publisher token: status %d, want 200", who, resp.StatusCode)
				}
				for _, e := range body.Items {
					for _, l := range e.Statement.Lines {
						if owned[l.Extension] != who {
							t.Errorf("%s's publisher token reads statement %s with line %s (of %s, bought by %s): another tenant's customer and revenue",
								who, e.Publisher, l.Extension, owned[l.Extension], l.Tenant)
						}
					}
				}
			}
		})
	}
}

// TestStatementsOfASharedNamespaceAreRefusedNotMixed runs on both stores:
// the operator asking for the statement of acme, whose names two tenants
// own, or for every statement, is refused with ErrSharedNamespace (409
// on the API) and told to give the namespace one owner, rather than shown
// one statement mixing the owners; a publishers: entry binding acme after
// globex claimed acme/other does not make acme's statement acme's
// (globex's name would be in it); tenants' tokens never select it.
func TestStatementsOfASharedNamespaceAreRefusedNotMixed(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			st := sc.open(t)
			at := time.Now().UTC().AddDate(0, 0, -1)
			period := billing.PeriodOf(at)
			storetest.SharedNamespace(t, st, at)
			bound := []index.Publisher{{Name: "acme", Tenant: "acme"}}
			for _, c := range []struct {
				what       string
				publishers []index.Publisher
				publisher  string
			}{
				{"every statement", nil, ""},
				{"acme's", nil, "acme"},
				{"every statement, acme bound to acme after globex claimed acme/other", bound, ""},
				{"acme's, acme bound to acme after globex claimed acme/other", bound, "acme"},
			} {
				entries, err := index.Statements(ctx, st, c.publishers, period, c.publisher, "", time.Now())
				if !errors.Is(err, index.ErrSharedNamespace) || !strings.Contains(err.Error(), "statements of acme:") || !strings.Contains(err.Error(), "publishers:") {
					t.Errorf("the operator asks for %s: %d entries, %v; want a refusal naming acme and telling to bind it with publishers:", c.what, len(entries), err)
				}
				for _, tenant := range []string{"acme", "globex"} {
					entries, err := index.Statements(ctx, st, c.publishers, period, "", tenant, time.Now())
					if err != nil || len(entries) != 0 {
						t.Errorf("tenant %s lists statements (%s): %+v, %v; want none and no error", tenant, c.what, entries, err)
					}
					if _, err := index.Statements(ctx, st, c.publishers, period, "acme", tenant, time.Now()); !errors.Is(err, index.ErrNoSuchPublisher) {
						t.Errorf("tenant %s asks for acme's statement (%s): %v, want ErrNoSuchPublisher", tenant, c.what, err)
					}
				}
			}
			// The single owner's statement again, once the namespace is
			// one tenant's: a control that the refusal is the sharing's.
			owners, err := index.StatementOwners(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := index.CheckStatementScope(map[string]string{"acme": "acme"}, []string{"acme"}); err != nil || owners["acme"] != "" {
				t.Errorf("owners %v, scope of acme owned by acme alone: %v; want acme without owner in the store, and one owner accepted", owners, err)
			}

			c, err := index.CreateToken(ctx, st, "ops", []string{"admin"}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer((&index.API{Store: st, Operator: "ops"}).Handler())
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/statements?period="+period, nil)
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "publishers:") || strings.Contains(string(body), "buyer-of-") {
				t.Errorf("the operator's admin token: %d %s; want 409 telling to bind acme with publishers:, and no line", resp.StatusCode, body)
			}
		})
	}
}
