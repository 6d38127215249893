package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

var stores = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

// impactWorld is an index whose store holds a three-level dependency
// chain across three tenants:
//
//	acme/http@1.2.0 (acme, public)
//	← acme/crm@1.0.0 (acme, public, ^1.2.0)
//	  ← globex/app@1.0.0 (globex, private, ~1.0)      ← globex/suite@2.0.0 (globex, private, ^1)
//	  ← initech/portal@1.0.0 (initech, public, ^1.0.0)
//
// and versions that must not be reached: initech/tool requires acme/http
// ^2 (it does not admit 1.2.0), initech/hidden is initech's private one.
type impactWorld struct {
	st     store.Store
	url    string
	tokens map[string]string // "tenant/role" → token
}

const acmeKey = "SHA256:acme-release-key"

func newImpactWorld(t *testing.T, st store.Store) *impactWorld {
	w := &impactWorld{st: st, tokens: map[string]string{}}
	ctx := context.Background()
	for _, tr := range []struct{ tenant, role string }{{"ops", "admin"}, {"acme", "publisher"}, {"acme", "reader"}, {"globex", "publisher"}, {"initech", "publisher"}} {
		tok, rec, err := index.NewToken(tr.tenant, []string{tr.role})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		w.tokens[tr.tenant+"/"+tr.role] = tok
	}
	add := func(tenant, name, version, vis string, deps ...string) {
		desc := map[string]any{"apiVersion": "marketplace.connectsoft.io/v1", "kind": "Module",
			"metadata": map[string]any{"name": name, "version": version}, "spec": map[string]any{"license": "MIT"}}
		var ds []map[string]string
		for i := 0; i+1 < len(deps); i += 2 {
			ds = append(ds, map[string]string{"name": deps[i], "version": deps[i+1]})
		}
		desc["spec"].(map[string]any)["dependencies"] = ds
		b, _ := json.Marshal(desc)
		v := &store.Version{Tenant: tenant, Name: name, Version: version, Repository: "reg/" + name, Digest: "sha256:" + name + "@" + version,
			Kind: "Module", License: "MIT", Visibility: vis, Descriptor: b, IngestedAt: time.Now()}
		if tenant == "acme" {
			v.Evidence = json.RawMessage(`{"signatures":[{"source":"cosign","fingerprint":"` + acmeKey + `","verified":true}],"attestations":[]}`)
		}
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	add("acme", "acme/http", "1.2.0", store.Public)
	add("acme", "acme/http", "2.0.0", store.Public)
	add("acme", "acme/crm", "1.0.0", store.Public, "acme/http", "^1.2.0")
	add("globex", "globex/app", "1.0.0", store.Private, "acme/crm", "~1.0")
	add("globex", "globex/suite", "2.0.0", store.Private, "globex/app", "^1")
	add("initech", "initech/portal", "1.0.0", store.Public, "acme/crm", "^1.0.0")
	add("initech", "initech/tool", "1.0.0", store.Public, "acme/http", "^2")
	add("initech", "initech/hidden", "1.0.0", store.Private)
	// Usage (issue 12's metering): who pulled or installed what. umbrella
	// used acme/http@2.0.0 only, which is outside 1.2.0's blast.
	var events []*store.UsageEvent
	for i, u := range []struct{ tenant, owner, name, version, typ string }{
		{"acme", "acme", "acme/http", "1.2.0", "pull"},
		{"globex", "globex", "globex/app", "1.0.0", "install"},
		{"hooli", "initech", "initech/portal", "1.0.0", "install"},
		{"hooli", "initech", "initech/portal", "1.0.0", "pull"},
		{"umbrella", "acme", "acme/http", "2.0.0", "install"},
	} {
		pub, _, _ := strings.Cut(u.name, "/")
		events = append(events, &store.UsageEvent{Source: "test", ID: fmt.Sprint(i), At: time.Now(), Tenant: u.tenant, Owner: u.owner,
			Publisher: pub, Name: u.name, Version: u.version, Digest: "sha256:" + u.name + "@" + u.version, Type: u.typ, Quantity: 1})
	}
	if _, err := st.(store.UsageStore).RecordUsage(ctx, events); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&index.API{Store: st, Operator: "ops"}).Handler())
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *impactWorld) impact(who string, q client.ImpactQuery) (*client.Impact, error) {
	c := &client.Client{URL: w.url, Token: w.tokens[who]}
	return c.Impact(context.Background(), q)
}

func refs(vs []client.ImpactVersion) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s@%s/%d", v.Name, v.Version, v.Depth))
	}
	return out
}

func tenantNames(ts []client.ImpactTenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Tenant)
	}
	return out
}

func TestImpactThroughAThreeLevelChain(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			w := newImpactWorld(t, s.open(t))
			got, err := w.impact("ops/admin", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"acme/crm@1.0.0/1", "globex/app@1.0.0/2", "initech/portal@1.0.0/2", "globex/suite@2.0.0/3"}
			if fmt.Sprint(refs(got.Dependents)) != fmt.Sprint(want) {
				t.Fatalf("dependents %v, want %v", refs(got.Dependents), want)
			}
			suite := got.Dependents[3]
			if suite.Via == nil || suite.Via.Name != "globex/app" || suite.Constraint != "^1" {
				t.Errorf("globex/suite came via %+v by %q", suite.Via, suite.Constraint)
			}
			if fmt.Sprint(tenantNames(got.Tenants)) != "[acme globex hooli]" || got.OtherTenants != 0 || got.HiddenDependents != 0 || got.TenantsFrom != "usage" {
				t.Errorf("tenants %v (other %d, hidden %d, from %s)", tenantNames(got.Tenants), got.OtherTenants, got.HiddenDependents, got.TenantsFrom)
			}
			// 2.0.0 has one dependent, and a version that nothing admits none.
			got, err = w.impact("ops/admin", client.ImpactQuery{Name: "acme/http", Version: "2.0.0"})
			if err != nil || fmt.Sprint(refs(got.Dependents)) != "[initech/tool@1.0.0/1]" {
				t.Fatalf("acme/http@2.0.0: %v %v", refs(got.Dependents), err)
			}
			// By digest and by the publisher's key: the same blast.
			got, err = w.impact("ops/admin", client.ImpactQuery{Digest: "sha256:acme/http@1.2.0"})
			if err != nil || len(got.Dependents) != 4 {
				t.Fatalf("by digest: %v %v", refs(got.Dependents), err)
			}
			got, err = w.impact("ops/admin", client.ImpactQuery{Key: acmeKey})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(refs(got.Targets)) != "[acme/crm@1.0.0/0 acme/http@2.0.0/0 acme/http@1.2.0/0]" || len(got.Dependents) != 4 {
				t.Fatalf("by key: targets %v dependents %v", refs(got.Targets), refs(got.Dependents))
			}
			// A version ingested after the first query is in the next one
			// (the graph follows the store's change feed).
			desc := `{"metadata":{"name":"initech/late","version":"0.1.0"},"spec":{"dependencies":[{"name":"globex/suite","version":">=2"}]}}`
			if _, err := w.st.UpsertVersion(context.Background(), &store.Version{Tenant: "initech", Name: "initech/late", Version: "0.1.0",
				Repository: "reg/initech/late", Digest: "sha256:late", Kind: "Module", Visibility: store.Public, Descriptor: json.RawMessage(desc)}); err != nil {
				t.Fatal(err)
			}
			got, err = w.impact("ops/admin", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
			if err != nil || !slices.Contains(refs(got.Dependents), "initech/late@0.1.0/4") {
				t.Fatalf("after a new ingest: %v %v", refs(got.Dependents), err)
			}
		})
	}
}

// TestImpactKeepsOtherTenantsOutOfAnswers is the attack: a publisher asks
// for its own blast radius and must learn no other tenant's private
// extension or customer from it, and one tenant probes another's private
// versions through impact.
func TestImpactKeepsOtherTenantsOutOfAnswers(t *testing.T) {
	w := newImpactWorld(t, storetest.SQLite(t))
	got, err := w.impact("acme/publisher", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(refs(got.Dependents)) != "[acme/crm@1.0.0/1 initech/portal@1.0.0/2]" || got.HiddenDependents != 2 {
		t.Errorf("acme sees dependents %v (hidden %d), want its own and public ones, globex's two counted", refs(got.Dependents), got.HiddenDependents)
	}
	if fmt.Sprint(tenantNames(got.Tenants)) != "[acme]" || got.OtherTenants != 2 {
		t.Errorf("acme sees tenants %v (other %d), want only itself named", tenantNames(got.Tenants), got.OtherTenants)
	}
	body, _ := json.Marshal(got)
	for _, secret := range []string{"globex", "initech/hidden", "hooli", "umbrella"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("acme's answer names %q: %s", secret, body)
		}
	}
	// By key, a publisher starts only from its own versions.
	if _, err := w.impact("globex/publisher", client.ImpactQuery{Key: acmeKey}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("globex asking for acme's key: %v, want forbidden", err)
	}
	for _, c := range []struct {
		who  string
		q    client.ImpactQuery
		want error
	}{
		{"", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"}, client.ErrUnauthorized},
		{"acme/reader", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"}, client.ErrForbidden},
		// Another tenant's public version: it exists, but is not yours.
		{"globex/publisher", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"}, client.ErrForbidden},
		// Another tenant's private version answers exactly like none.
		{"globex/publisher", client.ImpactQuery{Name: "initech/hidden", Version: "1.0.0"}, client.ErrNotFound},
		{"globex/publisher", client.ImpactQuery{Digest: "sha256:initech/hidden@1.0.0"}, client.ErrNotFound},
		{"globex/publisher", client.ImpactQuery{Name: "initech/none", Version: "1.0.0"}, client.ErrNotFound},
		{"ops/admin", client.ImpactQuery{Name: "acme/http"}, client.ErrBadRequest},
		{"ops/admin", client.ImpactQuery{Digest: "nothex"}, client.ErrBadRequest},
	} {
		_, err := w.impact(c.who, c.q)
		if !errors.Is(err, c.want) {
			t.Errorf("%s %+v: %v, want %v", c.who, c.q, err, c.want)
		}
	}
	// The owner itself sees its private version's impact.
	if got, err := w.impact("initech/publisher", client.ImpactQuery{Name: "initech/hidden", Version: "1.0.0"}); err != nil || len(got.Targets) != 1 {
		t.Errorf("initech's own private version: %+v %v", got, err)
	}
}

// TestYankedVersionPageShowsItsImpact: the extension page of a yanked
// version lists what depends on it, as far as the page's viewer may see:
// anonymous callers see the public dependents, never globex's private ones.
func TestYankedVersionPageShowsItsImpact(t *testing.T) {
	w := newImpactWorld(t, storetest.SQLite(t))
	v, err := w.st.Version(context.Background(), "acme", "acme/http", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	v.Lifecycle = "yanked"
	if _, err := w.st.UpsertVersion(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	page := func(token string) string {
		resp, err := http.DefaultClient.Do(mustRequest(t, w.url+"/extensions/acme/http", token))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("page: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	anon := page("")
	for _, want := range []string{`data-impact="1.2.0"`, "Impact of yanked 1.2.0: 2 versions depend on it", "acme/crm", "initech/portal"} {
		if !strings.Contains(anon, want) {
			t.Errorf("the anonymous page lacks %q", want)
		}
	}
	if strings.Contains(anon, "globex") || strings.Contains(anon, `data-impact="2.0.0"`) {
		t.Errorf("the anonymous page shows globex's private dependents or 2.0.0's impact:\n%s", anon)
	}
	if globex := page(w.tokens["globex/publisher"]); !strings.Contains(globex, "globex/suite") || !strings.Contains(globex, "4 versions depend") {
		t.Errorf("globex's page lacks its own dependents")
	}
}

func mustRequest(t *testing.T, url, token string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// A dependent the control list blocked is hidden as search and extension
// pages hide it (catalog.Viewer.CanSee: from all but its own tenant), in
// the impact of a yanked version too: on the page, signed in or not, and
// in a publisher's API answer, where it counts as hidden.
func TestImpactHidesBlockedDependents(t *testing.T) {
	w := newImpactWorld(t, storetest.SQLite(t))
	ctx := context.Background()
	for name, lc := range map[string]string{"acme/http": "yanked", "initech/portal": store.Blocked} {
		tenant, _, _ := strings.Cut(name, "/")
		v, err := w.st.Version(ctx, tenant, name, map[string]string{"acme/http": "1.2.0", "initech/portal": "1.0.0"}[name])
		if err != nil {
			t.Fatal(err)
		}
		v.Lifecycle = lc
		if _, err := w.st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	page := func(token string, cookie bool) string {
		req := mustRequest(t, w.url+"/extensions/acme/http", "")
		if token != "" && cookie {
			req.AddCookie(&http.Cookie{Name: "mkt_session", Value: token})
		} else if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("page: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	for who, p := range map[string]string{"anonymous": page("", false), "globex signed in": page(w.tokens["globex/publisher"], true),
		"acme signed in": page(w.tokens["acme/publisher"], true)} {
		if !strings.Contains(p, `data-impact="1.2.0"`) || strings.Contains(p, "initech/portal") {
			t.Errorf("the page of acme/http as %s shows the blocked initech/portal among 1.2.0's dependents:\n%s", who, p)
		}
	}
	if p := page(w.tokens["initech/publisher"], true); !strings.Contains(p, "initech/portal") {
		t.Errorf("initech's own page lacks its blocked dependent initech/portal")
	}
	got, err := w.impact("acme/publisher", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if r := strings.Join(refs(got.Dependents), " "); strings.Contains(r, "initech/portal") || got.HiddenDependents < 1 {
		t.Errorf("acme's impact of acme/http@1.2.0: dependents %s, hidden %d; want initech/portal (blocked) hidden", r, got.HiddenDependents)
	}
}
