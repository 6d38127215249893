package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/connectsoft/marketplace/remote"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
)

// publicURL is the index's configured address in the API tests.
const publicURL = "https://index.example.com"

type apiWorld struct {
	srv    *httptest.Server
	st     store.Store
	tokens map[string]string // tenant → token
}

func newAPIWorld(t *testing.T) *apiWorld {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &apiWorld{st: st, tokens: map[string]string{}}
	for _, tenant := range []string{"acme", "globex", "ops"} {
		roles := []string{"reader"}
		if tenant == "ops" {
			roles = append(roles, "admin")
		}
		tok, rec, err := index.NewToken(tenant, roles)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		w.tokens[tenant] = tok
	}
	add := func(tenant, name, version, vis, factory string, reviewed bool) {
		_, err := st.UpsertVersion(context.Background(), &store.Version{Tenant: tenant, Name: name, Version: version,
			Repository: "reg/" + name, Digest: "sha256:" + name + version, Kind: "Connector", Title: name, Description: "about " + name,
			License: "MIT", Factory: factory, Visibility: vis, Reviewed: reviewed, IngestedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	add("acme", "acme/public-crm", "1.0.0", store.Public, ">=2.0.0 <3.0.0", true)
	add("acme", "acme/public-crm", "1.1.0", store.Public, ">=2.0.0 <3.0.0", true)
	add("acme", "acme/secret", "1.0.0", store.Private, ">=2.0.0", false)
	add("globex", "globex/secret", "1.0.0", store.Private, ">=3.0.0", false)
	add("ops", "ops/internal-tool", "1.0.0", store.Internal, ">=2.0.0", true)
	st.UpsertVersion(context.Background(), &store.Version{Tenant: "acme", Name: "acme/secret", Version: "1.0.0", Repository: "reg/acme/secret", Digest: "sha256:moved", Kind: "Connector", Visibility: store.Private})
	api := &index.API{Store: st, Operator: "ops", PublicURL: publicURL}
	w.srv = httptest.NewServer(api.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

func (w *apiWorld) get(t *testing.T, tenant, path string, out any) int {
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+path, nil)
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[tenant])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type searchResult struct {
	Items []struct {
		Name, Tenant, LatestVersion string
	}
	Total int
}

func TestAPITenancyAndVisibility(t *testing.T) {
	w := newAPIWorld(t)
	cases := []struct {
		who   string
		names int
	}{
		{"", 1},       // anonymous: acme/public-crm
		{"acme", 2},   // + acme/secret
		{"globex", 2}, // + globex/secret
		{"ops", 2},    // + ops/internal-tool (its own, and it is the operator)
	}
	for _, c := range cases {
		var r searchResult
		if code := w.get(t, c.who, "/api/v1/extensions", &r); code != 200 || r.Total != c.names {
			t.Errorf("%q sees %d extensions (%+v), want %d", c.who, r.Total, r.Items, c.names)
		}
	}
	// Details: another tenant's private extension is a 404, anonymous too.
	for _, c := range []struct {
		who, path string
		code      int
	}{
		{"acme", "/api/v1/extensions/acme/secret", 200},
		{"globex", "/api/v1/extensions/acme/secret", 404},
		{"", "/api/v1/extensions/acme/secret", 404},
		{"", "/api/v1/extensions/acme/public-crm", 200},
		{"globex", "/api/v1/extensions/ops/internal-tool", 404},
		{"ops", "/api/v1/extensions/ops/internal-tool", 200},
	} {
		if code := w.get(t, c.who, c.path, nil); code != c.code {
			t.Errorf("%q GET %s: %d, want %d", c.who, c.path, code, c.code)
		}
	}
	// Searching by another tenant's private name finds nothing.
	var r searchResult
	w.get(t, "globex", "/api/v1/extensions?q=acme/secret", &r)
	if r.Total != 0 {
		t.Fatalf("globex found acme's private extension: %+v", r)
	}
	// A bad token is refused, not treated as anonymous.
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/extensions", nil)
	req.Header.Set("Authorization", "Bearer mkt_forged")
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
}

func TestAPISearchFiltersDetailsAndAlerts(t *testing.T) {
	w := newAPIWorld(t)
	for _, c := range []struct {
		query string
		total int
	}{
		{"?q=crm", 1},
		{"?factory=2.5.0", 2}, // ops does not see acme's private one
		{"?factory=3.1.0", 1},
		{"?reviewed=true", 2},
		{"?kind=Agent", 0},
		{"?kind=Connector", 2},
		{"?kind=connector", 2}, // any case, as mkt init takes it; it found nothing before
		{"?kind=CONNECTOR", 2},
		{"?publisher=acme", 1},
	} {
		var r searchResult
		if code := w.get(t, "ops", "/api/v1/extensions"+c.query, &r); code != 200 || r.Total != c.total {
			t.Errorf("ops %s: %d results, want %d (%d)", c.query, r.Total, c.total, code)
		}
	}
	if code := w.get(t, "", "/api/v1/extensions?reviewed=maybe", nil); code != 400 {
		t.Fatalf("bad filter: %d", code)
	}
	if code := w.get(t, "", "/api/v1/extensions?kind=plugin", nil); code != 400 {
		t.Fatalf("unknown kind: %d, want 400 rather than no results", code)
	}
	var d struct {
		Extension struct{ LatestVersion string }
		Versions  []store.Version
		Alerts    []store.Alert
	}
	w.get(t, "", "/api/v1/extensions/acme/public-crm", &d)
	if d.Extension.LatestVersion != "1.1.0" || len(d.Versions) != 2 {
		t.Fatalf("details: %+v", d)
	}
	w.get(t, "acme", "/api/v1/extensions/acme/secret", &d)
	if len(d.Alerts) != 1 || d.Alerts[0].Type != store.AlertTagMoved {
		t.Fatalf("details lack the tag-moved alert: %+v", d.Alerts)
	}
	var alerts struct{ Items []store.Alert }
	if code := w.get(t, "", "/api/v1/alerts", nil); code != 401 {
		t.Fatalf("anonymous alerts: %d", code)
	}
	w.get(t, "globex", "/api/v1/alerts", &alerts)
	if len(alerts.Items) != 0 {
		t.Fatalf("globex sees acme's alerts: %+v", alerts)
	}
	w.get(t, "ops", "/api/v1/alerts", &alerts)
	if len(alerts.Items) != 1 {
		t.Fatalf("the operator's admin sees %d alerts", len(alerts.Items))
	}
	if code := w.get(t, "", "/readyz", nil); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	// Paging: 25 public extensions, page 2 holds 5.
	for i := 0; i < 24; i++ {
		w.st.UpsertVersion(context.Background(), &store.Version{Tenant: "acme", Name: fmt.Sprintf("acme/p%02d", i), Version: "1.0.0", Repository: "r", Digest: "d", Kind: "Module", Visibility: store.Public})
	}
	var p2 searchResult
	w.get(t, "", "/api/v1/extensions?page=2", &p2)
	if p2.Total != 25 || len(p2.Items) != 5 {
		t.Fatalf("page 2: %d items of %d", len(p2.Items), p2.Total)
	}
}

func TestNewTokenRefusesUnknownRoles(t *testing.T) {
	if _, _, err := index.NewToken("acme", []string{"owner"}); err == nil {
		t.Fatal("accepted role owner")
	}
	tok, rec, err := index.NewToken("acme", []string{"reader"})
	if err != nil || rec.Hash != index.HashToken(tok) || rec.Hash == tok {
		t.Fatalf("token %q record %+v: %v", tok, rec, err)
	}
}

func TestServerMetricsCountRequestsAndWebhookEvents(t *testing.T) {
	dir := t.TempDir()
	c := &index.Config{Store: "sqlite://index.db", WebhookSecret: "s", Dir: dir}
	s, err := index.NewServer(context.Background(), c, remote.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/extensions", "/api/v1/extensions?q=x", "/healthz"} {
		resp, _ := http.Get(srv.URL + path)
		resp.Body.Close()
	}
	post(t, srv.URL+"/api/v1/events/registry", "Bearer wrong", `{"events":[]}`)
	// A push queued while no worker runs is the backlog.
	post(t, srv.URL+"/api/v1/events/registry", "Bearer s", `{"events":[{"id":"backlog-1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"acme/x","digest":"sha256:`+strings.Repeat("a", 64)+`","tag":"1.0.0"},"request":{"host":"r.example"}}]}`)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"mkt_index_queue_pending 1\n",
		`mkt_index_http_request_duration_seconds_count{route="GET /api/v1/extensions",status="200"} 2`,
		`mkt_index_http_request_duration_seconds_count{route="GET /healthz",status="200"} 1`,
		`mkt_index_webhook_events_total{outcome="unauthorized"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Every route the server answers is in the OpenAPI document, and nothing else.
func TestOpenAPIDescribesTheRoutes(t *testing.T) {
	w := newAPIWorld(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if code := w.get(t, "", "/api/v1/openapi.json", &doc); code != 200 || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %d %q", code, doc.OpenAPI)
	}
	routes := map[string]string{
		"/api/v1/extensions": "get", "/api/v1/extensions/{publisher}/{name}": "get", "/api/v1/resolve": "get",
		"/api/v1/alerts": "get", "/api/v1/reviews": "get", "/api/v1/publishers/{name}": "get", "/api/v1/events/registry": "post", "/api/v1/impact": "get", "/api/v1/statements": "get",
		"/api/v1/subscriptions/dead-letters": "get", "/api/v1/openapi.json": "get", "/api/v1/usage/events": "post", "/api/v1/usage": "get",
		"/healthz": "get", "/readyz": "get", "/metrics": "get",
	}
	for path, method := range routes {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("openapi.json lacks %s %s", method, path)
		}
	}
	if len(doc.Paths) != len(routes) {
		t.Errorf("openapi.json has %d paths, the server %d", len(doc.Paths), len(routes))
	}
}

// TestAPIRefusesRevokedAndExpiredTokens: a token past its expiry and a
// revoked one get 401, saying which; an unexpired one sees its tenant.
func TestAPIRefusesRevokedAndExpiredTokens(t *testing.T) {
	w := newAPIWorld(t)
	ctx := context.Background()
	mint := func(expires time.Time) string {
		tok, rec, err := index.NewToken("acme", []string{"reader"})
		if err != nil {
			t.Fatal(err)
		}
		rec.ExpiresAt = expires
		if err := w.st.PutToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		w.tokens[tok] = tok
		return tok
	}
	expired := mint(time.Now().Add(-time.Minute))
	valid := mint(time.Now().Add(time.Hour))
	revoked := mint(time.Time{})
	if _, err := w.st.RevokeToken(ctx, index.HashToken(revoked)[:store.TokenIDLength]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token  string
		status int
		says   string
	}{
		{expired, http.StatusUnauthorized, "token expired"},
		{revoked, http.StatusUnauthorized, "token revoked"},
		{valid, http.StatusOK, ""},
	} {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if got := w.get(t, tc.token, "/api/v1/alerts", &body); got != tc.status || body.Error.Message != tc.says ||
			(tc.says != "" && body.Error.Code != "unauthorized") {
			t.Errorf("%s: %d %+v, want %d %q", tc.says, got, body, tc.status, tc.says)
		}
	}
}
