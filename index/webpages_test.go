package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// webWorld is an index with something on every page: public and private
// extensions of two tenants, a quarantined version in the review queue,
// a statement with a line, and tokens of each kind.
type webWorld struct {
	srv    *httptest.Server
	st     store.Store
	tokens map[string]*index.CreatedToken
}

// newWebWorld serves the pages at publicURL, or, with publicURL "", at the
// test server's own address (the PublicURL a browser test signs in at).
func newWebWorld(t *testing.T, publicURL string) *webWorld {
	t.Helper()
	ctx := context.Background()
	st := storetest.SQLite(t)
	w := &webWorld{st: st, tokens: map[string]*index.CreatedToken{}}
	at := time.Now().UTC().AddDate(0, 0, -1)
	terms := `{"attestations":[{"source":"attestation","predicateType":"https://connectsoft.io/marketplace/terms/v1","verified":true,"fingerprint":"fp",` +
		`"statement":{"predicateType":"https://connectsoft.io/marketplace/terms/v1","predicate":{"license":"MIT","pricing":{"model":"usage","price":2,"currency":"EUR"},` +
		`"revenueShare":{"publisher":80,"platform":20},"effectiveDate":"2020-01-01T00:00:00Z","time":"2020-01-01T00:00:00Z"}}}]}`
	add := func(v *store.Version) {
		if _, err := st.ClaimName(ctx, v.Name, v.Tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		v.Digest = "sha256:" + strings.Repeat(v.Version[:1], 64)
		v.Kind, v.License, v.IngestedAt = "Connector", "MIT", time.Now()
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	add(&store.Version{Tenant: "acme", Name: "acme/public-crm", Version: "1.1.0", Repository: "registry.example.com/acme/public-crm",
		Title: "Public CRM connector", Description: "Syncs contacts with a CRM; a long description that wraps on a phone screen.",
		Factory: ">=2.0.0 <3.0.0", Visibility: store.Public, Reviewed: true, Evidence: json.RawMessage(terms)})
	add(&store.Version{Tenant: "acme", Name: "acme/secret", Version: "1.0.0", Repository: "registry.example.com/acme/secret",
		Title: "Acme's private connector", Factory: ">=2.0.0", Visibility: store.Private})
	add(&store.Version{Tenant: "globex", Name: "globex/secret", Version: "1.0.0", Repository: "registry.example.com/globex/secret",
		Title: "Globex's private connector", Factory: ">=3.0.0", Visibility: store.Private})
	add(&store.Version{Tenant: "acme", Name: "acme/new-agent", Version: "2.0.0", Repository: "registry.example.com/acme/new-agent-with-a-long-repository-name",
		Title: "An agent under review", Visibility: store.Public, Stage: "public", Quarantined: true})
	if _, err := st.RecordUsage(ctx, []*store.UsageEvent{{Source: "test", ID: "1", At: at, Tenant: "buyer", Owner: "acme", Publisher: "acme",
		Name: "acme/public-crm", Version: "1.1.0", Digest: "sha256:" + strings.Repeat("1", 64), Type: store.UsagePull, Quantity: 3}}); err != nil {
		t.Fatal(err)
	}
	for key, tr := range map[string]struct {
		tenant string
		roles  []string
	}{"acme": {"acme", []string{"reader"}}, "acme-publisher": {"acme", []string{"reader", "publisher"}},
		"globex": {"globex", []string{"reader"}}, "reviewer": {"ops", []string{"reader", "reviewer"}}} {
		c, err := index.CreateToken(ctx, st, tr.tenant, tr.roles, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[key] = c
	}
	api := &index.API{Store: st, Operator: "ops", PublicURL: publicURL}
	w.srv = httptest.NewUnstartedServer(nil)
	if publicURL == "" {
		api.PublicURL = "http://" + w.srv.Listener.Addr().String()
	}
	w.srv.Config.Handler = api.Handler()
	w.srv.Start()
	t.Cleanup(w.srv.Close)
	return w
}

// The sign-in flow over plain HTTP, as a browser's requests would make it
// and as an attacker would forge them.
func TestWebSignIn(t *testing.T) {
	w := newWebWorld(t, "https://index.example.com")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body(t, resp)
	}
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": w.srv.URL}
	good := w.tokens["acme"].Secret

	// A good token: a 303 to the local next, and a cookie with every flag
	// (Secure and __Host- as PublicURL is https).
	resp, _ := post(url.Values{"token": {good}, "next": {"/extensions/acme/secret"}}, sameOrigin)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/extensions/acme/secret" || len(cookies) != 1 {
		t.Fatalf("sign-in: %d, Location %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	c := cookies[0]
	if c.Name != "__Host-mkt_session" || c.Value != good || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("sign-in cookie %+v: want __Host-mkt_session, HttpOnly, Secure, SameSite=Strict, Path=/, no Domain", c)
	}

	// Open redirects: next must be a local path.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil.example"} {
		resp, _ := post(url.Values{"token": {good}, "next": {next}}, sameOrigin)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("next=%q: %d to %q, want a 303 to /", next, resp.StatusCode, loc)
		}
	}

	// Cross-site sign-ins (login CSRF) are refused and set nothing, even
	// with a good token; so is a cross-site sign-out.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"}, {"Origin": "null"}} {
		resp, page := post(url.Values{"token": {good}}, h)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 || !strings.Contains(page, "sent from another site") {
			t.Errorf("cross-site sign-in %v: %d, cookies %v", h, resp.StatusCode, resp.Cookies())
		}
	}
	req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign-out: %v %v", resp, err)
	}
	// The PublicURL's origin is the index's own too (behind a proxy that
	// rewrites Host).
	if resp, _ := post(url.Values{"token": {good}}, map[string]string{"Origin": "https://index.example.com"}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in from the PublicURL's origin: %d", resp.StatusCode)
	}

	// Bad tokens: a 401 page that says why, keeps nothing and never echoes
	// the token.
	revoked := w.tokens["globex"]
	if _, err := w.st.RevokeToken(context.Background(), revoked.Token.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ token, why string }{{"mkt_forged", "unknown token"}, {revoked.Secret, "token revoked"}} {
		resp, page := post(url.Values{"token": {c.token}}, sameOrigin)
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(page, c.why) ||
			strings.Contains(page, c.token) || !strings.Contains(page, `id="signin-error"`) {
			t.Errorf("sign-in with a bad token (%s): %d, cookies %v, page %s", c.why, resp.StatusCode, resp.Cookies(), page)
		}
	}
	if resp, page := post(url.Values{}, sameOrigin); resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 || !strings.Contains(page, "Paste an index token") {
		t.Errorf("sign-in without a token: %d %s", resp.StatusCode, page)
	}
	// A token in the query is not a sign-in.
	req, _ = http.NewRequest(http.MethodPost, w.srv.URL+"/signin?token="+good, nil)
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
		t.Errorf("sign-in with the token in the URL: %v %v", resp.StatusCode, err)
	}

	// The API never reads the cookie: a private extension stays a 404 with
	// a good cookie and no bearer token.
	req, _ = http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/extensions/acme/secret", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-mkt_session", Value: good})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the API with a sign-in cookie: %v %v, want 404 (bearer only)", resp.StatusCode, err)
	}
	// The page does.
	req, _ = http.NewRequest(http.MethodGet, w.srv.URL+"/extensions/acme/secret", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-mkt_session", Value: good})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the page with a sign-in cookie: %v %v, want 200", resp.StatusCode, err)
	}
	// A cookie of a revoked or unknown token: a 401 page saying to sign
	// in again, which clears it.
	for _, c := range []struct{ token, why string }{{revoked.Secret, "token revoked"}, {"mkt_forged", "unknown token"}} {
		req, _ = http.NewRequest(http.MethodGet, w.srv.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: "__Host-mkt_session", Value: c.token})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		if cs := resp.Cookies(); resp.StatusCode != http.StatusUnauthorized || len(cs) != 1 || cs[0].Name != "__Host-mkt_session" || cs[0].MaxAge >= 0 ||
			!strings.Contains(page, "Sign in again") || !strings.Contains(page, c.why) || strings.Contains(page, "Signed in as") {
			t.Errorf("a cookie with a %s: %d, cookies %v, page %s", c.why, resp.StatusCode, resp.Cookies(), page)
		}
	}
	// A token that expires: the cookie expires with it.
	expiring, err := index.CreateToken(context.Background(), w.st, "acme", []string{"reader"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = post(url.Values{"token": {expiring.Secret}}, sameOrigin)
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].Expires.Unix() != expiring.Token.ExpiresAt.Unix() {
		t.Errorf("the cookie of a token that expires at %s: %v", expiring.Token.ExpiresAt, cs)
	}
}

// Error pages: friendly HTML with the status, what went wrong and what to
// do next, for pages; JSON for the API.
func TestWebErrorPages(t *testing.T) {
	w := newWebWorld(t, "")
	get := func(path, who string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, w.srv.URL+path, nil)
		if who != "" {
			req.AddCookie(&http.Cookie{Name: "mkt_session", Value: w.tokens[who].Secret})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body(t, resp)
	}
	for _, c := range []struct {
		path, who string
		status    int
		want      []string
	}{
		{"/no/such/page", "", 404, []string{"Not found", "There is no page at this address", "Back to the catalog"}},
		{"/extensions/acme/nope", "", 404, []string{"Not found", "no extension acme/nope", "private to a tenant"}},
		{"/extensions/acme/secret", "globex", 404, []string{"no extension acme/secret"}},
		{"/?page=abc", "", 400, []string{"That request is not valid", "page"}},
		{"/reviews", "", 401, []string{"Sign in to see this page", "reviewer role", `href="/signin?next=%2freviews"`}},
		{"/reviews", "acme", 403, []string{"Not allowed", "reviewer role", `href="/signin?next=%2freviews"`}},
		{"/statements", "", 401, []string{"Sign in to see this page", "publisher"}},
		{"/statements", "acme", 403, []string{"Not allowed", "publisher role"}},
		{"/statements?period=2026-13", "acme-publisher", 400, []string{"That request is not valid", "2026-13"}},
	} {
		resp, page := get(c.path, c.who)
		if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(page, fmt.Sprintf(`data-status="%d"`, c.status)) || !strings.Contains(page, `<main id="main"`) {
			t.Errorf("%s as %q: %d %s, want a %d page in the layout", c.path, c.who, resp.StatusCode, resp.Header.Get("Content-Type"), c.status)
			continue
		}
		for _, s := range c.want {
			if !strings.Contains(page, s) {
				t.Errorf("%s as %q: the %d page lacks %q:\n%s", c.path, c.who, c.status, s, page)
			}
		}
	}
	// Unknown API paths stay JSON.
	resp, page := get("/api/v1/nope", "")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(page, `"code":"notFound"`) {
		t.Errorf("an unknown API path: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	// A 500 says nothing of the cause: the store is closed under the pages.
	w.st.Close()
	resp, page = get("/extensions/acme/public-crm", "")
	if resp.StatusCode != 500 || !strings.Contains(page, "Something went wrong") || !strings.Contains(page, "tell the index&#39;s operator") ||
		strings.Contains(strings.ToLower(page), "sql") || strings.Contains(page, "closed") {
		t.Errorf("a 500: %d\n%s", resp.StatusCode, page)
	}
}

// axeScript is axe-core's axe.min.js: MKT_AXE, or where `make axe` puts it.
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("MKT_AXE")
	if path == "" {
		path = filepath.Join(build.Default.GOPATH, "share", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("axe-core is missing (run `make axe`, or set MKT_AXE to axe.min.js): %v", err)
	}
	return string(b)
}

// screenshotDir is where the page screenshots go: MKT_SCREENSHOTS, or
// mkt-screenshots in the temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("MKT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mkt-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// axeViolation is what the test prints of an axe violation.
type axeViolation struct {
	ID, Impact, Help string
	Targets          []string
}

// runAxe injects axe-core into the page unless it has it (through
// DevTools, which the page's CSP does not govern) and returns its serious
// and critical violations.
func runAxe(src string, out *[]axeViolation) chromedp.Action {
	return chromedp.Tasks{
		chromedp.ActionFunc(func(ctx context.Context) error {
			var loaded bool
			if err := chromedp.Evaluate(`typeof axe === "object"`, &loaded).Do(ctx); err != nil || loaded {
				return err
			}
			return chromedp.Evaluate(src+";0", nil).Do(ctx)
		}),
		chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
			.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(" "))})))`,
			out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	}
}

// pageURL is path on w, or path itself when it is a URL.
func pageURL(w *webWorld, path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return w.srv.URL + path
}

// browserSignIn signs in through the sign-in form, or out with the
// header's button (who ""), as a person would.
func browserSignIn(w *webWorld, who string) chromedp.Action {
	if who == "" {
		return chromedp.Tasks{
			chromedp.Navigate(w.srv.URL + "/"),
			chromedp.Click("#signout", chromedp.ByQuery),
			chromedp.WaitVisible("#signin-link", chromedp.ByQuery),
		}
	}
	return chromedp.Tasks{
		chromedp.Navigate(w.srv.URL + "/signin"),
		chromedp.SendKeys("#token", w.tokens[who].Secret, chromedp.ByQuery),
		chromedp.Submit("#token", chromedp.ByQuery),
		chromedp.WaitVisible("#signed-in", chromedp.ByQuery),
	}
}

// Every page, at 1280 and 375 px: no serious or critical axe-core
// violation, no horizontal page scroll at 375 px, and a screenshot of each
// (MKT_SCREENSHOTS, docs/index.md "Web catalog"). Then the keyboard: the
// first Tab reaches the skip link, visibly, and it moves focus to main.
func TestWebPagesAccessible(t *testing.T) {
	axe := axeScript(t)
	shots := screenshotDir(t)
	w := newWebWorld(t, "")
	broken := newWebWorld(t, "") // its store closed: every page is a 500
	broken.st.Close()
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	pages := []struct {
		name, path, who string
		status          int    // 0: 200
		want            string // an element the page must show
	}{
		{"search", "/?q=crm", "", 0, `.result[data-name="acme/public-crm"]`},
		{"search-empty", "/?q=nothing-matches", "", 0, `#no-results a[href="/signin"]`},
		{"extension", "/extensions/acme/public-crm", "", 0, "#install"},
		{"publisher", "/publishers/acme", "", 0, `.result[data-name="acme/public-crm"]`},
		{"signin", "/signin", "", 0, "#token"},
		{"error-404", "/no/such/page", "", 404, "#error"},
		{"error-404-extension", "/extensions/acme/nope", "", 404, "#error"},
		{"error-400", "/?page=abc", "", 400, "#error"},
		{"error-401", "/reviews", "", 401, "#error"},
		{"error-500", broken.srv.URL + "/extensions/acme/public-crm", "", 500, "#error"},
		{"reviews", "/reviews?stage=public", "reviewer", 0, `.review[data-name="acme/new-agent"]`},
		{"error-403", "/statements", "reviewer", 403, "#error"},
		{"search-signed-in", "/", "acme-publisher", 0, `.result[data-name="acme/secret"]`},
		{"statements", "/statements", "acme-publisher", 0, `.statement[data-publisher="acme"] tr[data-extension="acme/public-crm"]`},
	}
	who := ""
	for _, p := range pages {
		if p.who != who {
			if who != "" {
				if err := chromedp.Run(ctx, browserSignIn(w, "")); err != nil {
					t.Fatalf("signing out: %v", err)
				}
			}
			if p.who != "" {
				if err := chromedp.Run(ctx, browserSignIn(w, p.who)); err != nil {
					t.Fatalf("signing in as %s: %v", p.who, err)
				}
			}
			who = p.who
		}
		for _, width := range []int64{1280, 375} {
			var violations []axeViolation
			var scrollWidth int64
			var status string
			var shot []byte
			// One load per page: the narrow layout is the same document
			// with the viewport resized.
			load := chromedp.Tasks{chromedp.Navigate(pageURL(w, p.path)), chromedp.WaitReady(p.want, chromedp.ByQuery)}
			if width != 1280 {
				load = nil
			}
			err := chromedp.Run(ctx,
				chromedp.EmulateViewport(width, 800),
				load,
				chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
				chromedp.Evaluate(`(document.querySelector("#error") || {dataset: {status: ""}}).dataset.status`, &status),
				runAxe(axe, &violations),
				chromedp.FullScreenshot(&shot, 100),
			)
			if err != nil {
				t.Fatalf("%s at %d px: %v", p.name, width, err)
			}
			file := filepath.Join(shots, fmt.Sprintf("%s-%d.png", p.name, width))
			if err := os.WriteFile(file, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(p.status); p.status != 0 && status != want || p.status == 0 && status != "" {
				t.Errorf("%s at %d px: error page status %q, want %d", p.name, width, status, p.status)
			}
			if scrollWidth > width {
				t.Errorf("%s at %d px scrolls sideways: the page is %d px wide (%s)", p.name, width, scrollWidth, file)
			}
			for _, v := range violations {
				t.Errorf("%s at %d px: axe %s (%s): %s at %s", p.name, width, v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
			}
		}
	}
	t.Logf("screenshots of %d pages in %s", len(pages), shots)
	if err := chromedp.Run(ctx, browserSignIn(w, "")); err != nil {
		t.Fatal(err)
	}

	// The harness catches a violation: an input stripped of its label
	// (and placeholder) is a critical "label" one.
	var planted []axeViolation
	if err := chromedp.Run(ctx, chromedp.Navigate(w.srv.URL+"/"), chromedp.WaitReady("main", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("label[for=q]").remove(); document.querySelector("#q").removeAttribute("placeholder"); 0`, nil), runAxe(axe, &planted)); err != nil {
		t.Fatal(err)
	}
	if len(planted) != 1 || planted[0].ID != "label" || planted[0].Impact != "critical" || strings.Join(planted[0].Targets, ",") != "#q" {
		t.Errorf("axe on a search box without its label: %+v, want one critical label violation at #q", planted)
	}

	// The keyboard, from a fresh load: Tab reaches the skip link first,
	// which shows a focus outline; Enter moves focus to main; the next
	// stops follow the page's order.
	var first, outline, afterSkip string
	var order []string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(w.srv.URL+"/"),
		chromedp.WaitReady("main", chromedp.ByQuery),
		chromedp.KeyEvent(kb.Tab),
		chromedp.Evaluate(`document.activeElement.className + ":" + document.activeElement.textContent`, &first),
		chromedp.Evaluate(`getComputedStyle(document.activeElement).outlineStyle`, &outline),
		chromedp.KeyEvent(kb.Enter),
		chromedp.Evaluate(`document.activeElement.id`, &afterSkip),
		chromedp.Navigate(w.srv.URL+"/"),
		chromedp.WaitReady("main", chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		var name string
		if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Tab),
			chromedp.Evaluate(`(e => e.id || e.textContent.trim())(document.activeElement)`, &name)); err != nil {
			t.Fatal(err)
		}
		order = append(order, name)
	}
	if first != "skip:Skip to content" || outline == "none" || afterSkip != "main" {
		t.Errorf("first Tab: %q (outline %s), after Enter focus is on %q; want the skip link, outlined, then main", first, outline, afterSkip)
	}
	if got, want := strings.Join(order, " | "), "Skip to content | ConnectSoft Marketplace | Catalog | Statements | signin-link | q | kind"; got != want {
		t.Errorf("tab order %q, want %q", got, want)
	}
}

// Private extensions show after signing in with their tenant's token, and
// only then: another tenant's token sees nothing of them, signing out
// hides them again, and a revoked token stops showing them at the next
// page. The cookie has its flags; a form on another site cannot sign the
// browser in.
func TestWebSignInInChromium(t *testing.T) {
	w := newWebWorld(t, "")
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var text string
	catalog := func() string {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Navigate(w.srv.URL+"/"), chromedp.WaitReady("main", chromedp.ByQuery),
			chromedp.Text("body", &text, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		return text
	}
	if c := catalog(); strings.Contains(c, "acme/secret") || strings.Contains(c, "globex/secret") {
		t.Fatalf("anonymous catalog shows a private extension: %s", c)
	}
	// Signing in from a page that needed it comes back to that page.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(w.srv.URL+"/extensions/acme/secret"),
		chromedp.Text("main", &text, chromedp.ByQuery),
	); err != nil || !strings.Contains(text, "no extension acme/secret") {
		t.Fatalf("anonymous, acme/secret's page: %v %s", err, text)
	}
	var header string
	var cookies []*network.Cookie
	err := chromedp.Run(ctx,
		chromedp.Navigate(w.srv.URL+"/signin?next=/extensions/acme/secret"),
		chromedp.SendKeys("#token", w.tokens["acme"].Secret, chromedp.ByQuery),
		chromedp.Submit("#token", chromedp.ByQuery),
		chromedp.WaitVisible("#signed-in", chromedp.ByQuery),
		chromedp.Text("header", &header, chromedp.ByQuery),
		chromedp.Text("main", &text, chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) (err error) {
			cookies, err = network.GetCookies().Do(ctx)
			return err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(header, "Signed in as acme (reader)") || !strings.Contains(header, "Sign out") || strings.Contains(header, "Reviews") {
		t.Errorf("header signed in as acme: %q", header)
	}
	if !strings.Contains(text, "Acme's private connector") {
		t.Errorf("acme signed in, back on acme/secret's page: %q", text)
	}
	if len(cookies) != 1 || cookies[0].Name != "mkt_session" || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict ||
		cookies[0].Path != "/" || cookies[0].Secure {
		t.Errorf("cookies after sign-in over http: %+v; want one mkt_session, HttpOnly, SameSite=Strict, Path=/, not Secure", cookies)
	}
	var fromScript string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.cookie`, &fromScript)); err != nil || fromScript != "" {
		t.Errorf("a script reads the cookie: %q %v", fromScript, err)
	}
	if c := catalog(); !strings.Contains(c, "acme/secret") || strings.Contains(c, "globex/secret") {
		t.Errorf("acme's catalog: %s", c)
	}
	// Signing out hides them again.
	if err := chromedp.Run(ctx, browserSignIn(w, "")); err != nil {
		t.Fatal(err)
	}
	if c := catalog(); strings.Contains(c, "acme/secret") {
		t.Errorf("signed out, the catalog shows acme/secret: %s", c)
	}
	// Another tenant sees nothing of them, on the catalog or the page.
	if err := chromedp.Run(ctx, browserSignIn(w, "globex")); err != nil {
		t.Fatal(err)
	}
	if c := catalog(); strings.Contains(c, "acme/secret") || !strings.Contains(c, "globex/secret") {
		t.Errorf("globex's catalog: %s", c)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(w.srv.URL+"/extensions/acme/secret"), chromedp.Text("main", &text, chromedp.ByQuery)); err != nil ||
		strings.Contains(text, "Acme's private connector") || !strings.Contains(text, "no extension acme/secret") {
		t.Errorf("globex on acme/secret's page: %v %s", err, text)
	}
	if err := chromedp.Run(ctx, browserSignIn(w, ""), browserSignIn(w, "acme")); err != nil {
		t.Fatal(err)
	}
	// Revoked: the next page says to sign in again, and then shows what
	// anyone sees.
	if _, err := w.st.RevokeToken(context.Background(), w.tokens["acme"].Token.ID); err != nil {
		t.Fatal(err)
	}
	if c := catalog(); !strings.Contains(c, "Sign in again") || !strings.Contains(c, "token revoked") || strings.Contains(c, "acme/secret") {
		t.Errorf("after the token was revoked: %s", c)
	}
	if c := catalog(); strings.Contains(c, "acme/secret") || strings.Contains(c, "Signed in as") || !strings.Contains(c, "acme/public-crm") {
		t.Errorf("after the revoked sign-in was cleared: %s", c)
	}

	// A form on another origin (another port: same-site, cross-origin)
	// that signs the browser in with the attacker's token is refused.
	attacker := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, `<!doctype html><form method="post" action="%s/signin"><input name="token" value="%s"><button id="go">go</button></form>`,
			w.srv.URL, w.tokens["globex"].Secret)
	}))
	defer attacker.Close()
	// Browsers treat 127.0.0.1 and localhost as different sites.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(attacker.URL, "http://"))
	for _, origin := range []string{attacker.URL, "http://localhost:" + port} {
		if err := chromedp.Run(ctx,
			chromedp.Navigate(origin+"/"),
			chromedp.Click("#go", chromedp.ByQuery),
			chromedp.WaitVisible("#error", chromedp.ByQuery),
			chromedp.Text("main", &text, chromedp.ByQuery),
			chromedp.ActionFunc(func(ctx context.Context) (err error) {
				cookies, err = network.GetCookies().WithURLs([]string{w.srv.URL}).Do(ctx)
				return err
			}),
		); err != nil {
			t.Fatalf("cross-site form from %s: %v", origin, err)
		}
		if !strings.Contains(text, "sent from another site") || len(cookies) != 0 {
			t.Errorf("cross-site sign-in from %s: %q, cookies %+v", origin, text, cookies)
		}
	}
}
