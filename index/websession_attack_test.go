package index_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
)

// Attacks on the pages' sign-in (index/websession.go) by a signed-in tenant,
// a cross-site page and a careless proxy, against a real index and store.

// lockedBuffer is a log sink the server's goroutines write to while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveAgain serves w's store with another API (no PublicURL, a log the
// test reads at debug level), as an index configured without publicURL.
func serveAgain(t *testing.T, w *webWorld) (*httptest.Server, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	api := &index.API{Store: w.st, Operator: "ops", Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, logs
}

// pageAs GETs path on srv with the sign-in cookie of token (none for "")
// and extra headers, following no redirect.
func pageAs(t *testing.T, srv *httptest.Server, cookie, token, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: cookie, Value: token})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body(t, resp)
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postForm POSTs form to path on srv with headers, following no redirect.
func postForm(t *testing.T, srv *httptest.Server, path string, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body(t, resp)
}

// A tenant signed in to the pages sees no more of another tenant than the
// API shows it, and an answer about another tenant's private name is the
// answer about a name that does not exist (status and page, but the name).
func TestWebSessionTenantCannotReadAnother(t *testing.T) {
	w := newWebWorld(t, "")
	globex, acme := w.tokens["globex"].Secret, w.tokens["acme-publisher"].Secret
	const c = "mkt_session"
	same := func(whose, absent string, whoseName, absentName string, token string) {
		t.Helper()
		r1, p1 := pageAs(t, w.srv, c, token, whose, nil)
		r2, p2 := pageAs(t, w.srv, c, token, absent, nil)
		p1 = strings.ReplaceAll(p1, whoseName, "NAME")
		p2 = strings.ReplaceAll(p2, absentName, "NAME")
		if r1.StatusCode != r2.StatusCode || p1 != p2 {
			t.Errorf("%s (%d) and %s (%d) differ: another tenant's private name is confirmed:\n%s\n----\n%s", whose, r1.StatusCode, absent, r2.StatusCode, p1, p2)
		}
	}
	// Extension, publisher and statements pages: private == absent.
	same("/extensions/acme/secret", "/extensions/acme/nopex", "acme/secret", "acme/nopex", globex)
	same("/publishers/globex", "/publishers/nopexz", "globex", "nopexz", acme)
	same("/statements?publisher=globex", "/statements?publisher=nopexz", "globex", "nopexz", acme)
	// A quarantined version is its tenant's (and reviewers'): to another
	// tenant its extension is absent.
	same("/extensions/acme/new-agent", "/extensions/acme/nope-agent", "acme/new-agent", "acme/nope-agent", globex)
	if resp, _ := pageAs(t, w.srv, c, acme, "/extensions/acme/new-agent", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("acme's own quarantined extension, signed in as acme: %d, want 200", resp.StatusCode)
	}

	// Search (and its total) and the publisher page list only what the
	// viewer may see.
	_, page := pageAs(t, w.srv, c, globex, "/?q=secret", nil)
	if strings.Contains(page, "acme/secret") || strings.Contains(page, "Acme&#39;s private") || !strings.Contains(page, `data-name="globex/secret"`) ||
		!strings.Contains(page, `<p class="meta" id="total">1 extension</p>`) {
		t.Errorf("globex's search for secret shows acme's private extension or a wrong total:\n%s", page)
	}
	_, page = pageAs(t, w.srv, c, globex, "/publishers/acme", nil)
	if strings.Contains(page, "acme/secret") || strings.Contains(page, "acme/new-agent") {
		t.Errorf("acme's publisher page shows globex acme's private or quarantined extension:\n%s", page)
	}
	// Review queue: not without the role, whatever the query.
	for _, p := range []string{"/reviews", "/reviews?status=passed", "/reviews?stage=public"} {
		if resp, page := pageAs(t, w.srv, c, globex, p, nil); resp.StatusCode != http.StatusForbidden || strings.Contains(page, "acme/new-agent") {
			t.Errorf("%s as globex (reader): %d, want 403 listing nothing", p, resp.StatusCode)
		}
	}
	// Statements: a reader gets none, a publisher only its own.
	if resp, _ := pageAs(t, w.srv, c, globex, "/statements", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/statements as a reader: %d, want 403", resp.StatusCode)
	}
	// A bearer token wins over the cookie on pages, as documented: acme's
	// cookie with globex's bearer token is globex.
	if resp, _ := pageAs(t, w.srv, c, acme, "/extensions/acme/secret", map[string]string{"Authorization": "Bearer " + globex}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme's cookie with globex's bearer token: %d, want globex's 404", resp.StatusCode)
	}
}

// The JSON API never reads the sign-in cookie, under either name: every
// endpoint answers a cookie exactly as it answers nobody.
func TestAPIIgnoresTheSignInCookie(t *testing.T) {
	w := newWebWorld(t, "https://index.example.com")
	ops := w.tokens["reviewer"].Secret
	for _, p := range []string{"/api/v1/extensions?q=secret", "/api/v1/extensions/acme/secret", "/api/v1/extensions/acme/new-agent",
		"/api/v1/publishers/acme", "/api/v1/reviews", "/api/v1/statements", "/api/v1/alerts", "/api/v1/subscriptions/dead-letters",
		"/api/v1/resolve?name=acme/secret", "/api/v1/impact?name=acme/secret"} {
		want, wantPage := pageAs(t, w.srv, "", "", p, nil)
		for _, name := range []string{"__Host-mkt_session", "mkt_session"} {
			got, gotPage := pageAs(t, w.srv, name, ops, p, nil)
			if got.StatusCode != want.StatusCode || gotPage != wantPage {
				t.Errorf("%s with the operator's cookie %s: %d %s, want the anonymous answer %d %s", p, name, got.StatusCode, gotPage, want.StatusCode, wantPage)
			}
		}
	}
}

// Cross-site sign-in and sign-out without publicURL, where the origin is
// the request's Host: a browser cannot forge Host, so a cross-site form is
// refused; a client sending neither Sec-Fetch-Site nor Origin is no
// browser (it rides nobody's cookie) and is let through, as net/http's
// CrossOriginProtection does.
func TestWebSignInCSRFWithoutPublicURL(t *testing.T) {
	w := newWebWorld(t, "")
	srv, _ := serveAgain(t, w)
	good := w.tokens["acme"].Secret
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
		{"Origin": "https://" + host}, // same host and port, another scheme: see below
		{"Sec-Fetch-Site": "cross-site", "Origin": srv.URL},
		{"Sec-Fetch-Site": "same-site"},
	} {
		for _, path := range []string{"/signin", "/signout"} {
			resp, page := postForm(t, srv, path, url.Values{"token": {good}}, h)
			refused := resp.StatusCode == http.StatusForbidden && len(resp.Cookies()) == 0 && strings.Contains(page, "sent from another site")
			if h["Origin"] == "https://"+host && h["Sec-Fetch-Site"] == "" {
				// Same host and port, other scheme: no browser page can be
				// both, so letting it through is harmless; documented here so
				// a change in net/http shows.
				refused = resp.StatusCode == http.StatusSeeOther
			}
			if !refused {
				t.Errorf("POST %s with %v: %d, cookies %v", path, h, resp.StatusCode, resp.Cookies())
			}
		}
	}
	// No browser headers (curl): allowed, with a cookie for this host only.
	resp, _ := postForm(t, srv, "/signin", url.Values{"token": {good}}, nil)
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || cs[0].Name != "mkt_session" || cs[0].Domain != "" || cs[0].Secure ||
		!cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Path != "/" {
		t.Errorf("sign-in without browser headers over http: %d, cookies %+v", resp.StatusCode, cs)
	}
	// A forged Host with a matching Origin passes the check (net/http
	// compares them), but only a non-browser can send it, and the cookie it
	// gets has no Domain: it is the forger's own, for the host it named.
	resp, _ = postForm(t, srv, "/signin", url.Values{"token": {good}}, map[string]string{"Host": "evil.example", "Origin": "http://evil.example"})
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || cs[0].Domain != "" {
		t.Errorf("sign-in with a forged Host: %d, cookies %+v", resp.StatusCode, cs)
	}
}

// next= never leads off the index, however it is spelled, through the
// sign-in's redirect and any redirect that follows it.
func TestWebSignInNextStaysOnTheIndex(t *testing.T) {
	w := newWebWorld(t, "")
	good := w.tokens["acme"].Secret
	base, _ := url.Parse(w.srv.URL)
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin"}
	for _, next := range []string{"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/%2F%2Fevil.example",
		"/%2f/evil.example", "/%09/evil.example", "/\t/evil.example", "/%5C%5Cevil.example", "/%5cevil.example", "https://evil.example",
		"HTTPS://evil.example", "http:evil.example", "//evil.example@index", "/.//evil.example", "/..//evil.example", "/a/../..//evil.example",
		"/%2E%2E%2F%2Fevil.example", " //evil.example", "\x00//evil.example", "/\r\nSet-Cookie: x=1", "/%0d%0aSet-Cookie:%20x=1",
		"/?x=\r\nLocation: //evil.example", "javascript:alert(1)", "data:text/html,x", "/\u3000/evil.example", "/\uff0fevil.example",
		"/signin?next=//evil.example", "/extensions/acme/%2e%2e/%2e%2e//evil.example"} {
		resp, _ := postForm(t, w.srv, "/signin", url.Values{"token": {good}, "next": {next}}, sameOrigin)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("next=%q: %d, want 303", next, resp.StatusCode)
			continue
		}
		if resp.Header.Get("Set-Cookie") == "" || len(resp.Header.Values("Set-Cookie")) != 1 {
			t.Errorf("next=%q: Set-Cookie %q, want exactly the session cookie", next, resp.Header.Values("Set-Cookie"))
		}
		// Follow the chain as a browser would (with the cookie).
		loc := resp.Header.Get("Location")
		for hop := 0; loc != "" && hop < 5; hop++ {
			if strings.ContainsAny(loc, "\r\n\t\\") {
				t.Errorf("next=%q: hop %d Location %q has characters a browser drops or reads as /", next, hop, loc)
				break
			}
			u, err := base.Parse(loc)
			if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
				t.Errorf("next=%q: hop %d goes to %q (%v), off the index", next, hop, loc, err)
				break
			}
			r, _ := pageAs(t, w.srv, "mkt_session", good, u.RequestURI(), nil)
			loc = ""
			if r.StatusCode >= 300 && r.StatusCode < 400 {
				loc = r.Header.Get("Location")
			}
		}
	}
	// A stale cookie on the sign-in form itself: the form signed in again
	// goes where it was going, not back to the form (/signin?next=...).
	_, page := pageAs(t, w.srv, "mkt_session", "mkt_stale", "/signin?next=%2Fstatements", nil)
	if !strings.Contains(page, `name="next" value="/statements"`) {
		t.Errorf("the sign-in form with a stale cookie: want next /statements:\n%s", page)
	}
	// The sign-in form carries only a local next.
	for next, want := range map[string]string{"//evil.example": "", "/reviews?stage=public&status=passed": `value="/reviews?stage=public&amp;status=passed"`} {
		_, page := pageAs(t, w.srv, "", "", "/signin?next="+url.QueryEscape(next), nil)
		if strings.Contains(page, "evil.example") || want != "" && !strings.Contains(page, want) {
			t.Errorf("sign-in form for next=%q: want %q, no evil.example:\n%s", next, want, page)
		}
	}
}

// What the pages echo (paths, queries, error messages) is escaped: no
// markup of the caller's reaches a page.
func TestWebPagesEscapeWhatTheyEcho(t *testing.T) {
	w := newWebWorld(t, "")
	const x = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	q := url.QueryEscape(x)
	p := url.PathEscape(x)
	for _, c := range []struct{ who, path string }{
		{"", "/?q=" + q + "&kind=" + q + "&factory=" + q},
		{"", "/?page=" + q},
		{"", "/extensions/" + p + "/x"},
		{"", "/extensions/acme/" + p},
		{"", "/publishers/" + p},
		{"", "/no/" + p},
		{"", "/" + p + "?" + q},
		{"", "/signin?next=/" + q},
		{"reviewer", "/reviews?stage=" + q},
		{"reviewer", "/reviews?status=" + q + "&page=" + q},
		{"acme-publisher", "/statements?period=" + q},
		{"acme-publisher", "/statements?publisher=" + q},
		{"acme", "/extensions/acme/public-crm?x=" + q},
	} {
		token := ""
		if c.who != "" {
			token = w.tokens[c.who].Secret
		}
		resp, page := pageAs(t, w.srv, "mkt_session", token, c.path, nil)
		// The caller's markup, not the page's own script (copy.js).
		for _, bad := range []string{"<script>alert", "<img src=x"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s as %q (%d): the page has %q unescaped:\n%s", c.path, c.who, resp.StatusCode, bad, page)
				break
			}
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: Content-Type %q", c.path, resp.Header.Get("Content-Type"))
		}
	}
}

// The token never leaves the cookie: not in an address, a page, a log, or
// a cache. Every answer that sets or clears the cookie, redirects
// included, is no-store.
func TestWebSignInTokenDoesNotLeak(t *testing.T) {
	w := newWebWorld(t, "")
	srv, logs := serveAgain(t, w)
	good := w.tokens["acme-publisher"].Secret
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin"}
	check := func(what string, resp *http.Response, page string) {
		t.Helper()
		for k, vs := range resp.Header {
			if k == "Set-Cookie" {
				continue
			}
			for _, v := range vs {
				if strings.Contains(v, good) {
					t.Errorf("%s: header %s carries the token", what, k)
				}
			}
		}
		if strings.Contains(page, good) {
			t.Errorf("%s: the page carries the token", what)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s: %d with Cache-Control %q, want no-store (a shared cache must not keep an answer that sets the cookie or depends on it)", what, resp.StatusCode, cc)
		}
	}
	resp, page := postForm(t, srv, "/signin", url.Values{"token": {good}, "next": {"/statements"}}, sameOrigin)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	check("the sign-in redirect", resp, page)
	resp, page = postForm(t, srv, "/signout", nil, sameOrigin)
	check("the sign-out redirect", resp, page)
	for _, p := range []string{"/", "/statements", "/extensions/acme/secret", "/signin", "/no/such", "/reviews"} {
		resp, page := pageAs(t, srv, "mkt_session", good, p, nil)
		check(p, resp, page)
	}
	// Bad cookies: garbage, huge, expired, a token for nothing. Each is a
	// 401 sign-in page that clears the cookie, never a 500.
	expired, rec2, err := index.NewToken("acme", []string{"reader"})
	if err != nil {
		t.Fatal(err)
	}
	rec2.ExpiresAt = time.Now().Add(-time.Minute)
	if err := w.st.PutToken(context.Background(), rec2); err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]string{"garbage": "mkt_x", "huge": "mkt_" + strings.Repeat("A", 64<<10), "expired": expired} {
		resp, page := pageAs(t, srv, "mkt_session", v, "/extensions/acme/public-crm", nil)
		cs := resp.Cookies()
		if resp.StatusCode != http.StatusUnauthorized || len(cs) != 1 || cs[0].MaxAge >= 0 || !strings.Contains(page, "Sign in again") {
			t.Errorf("a %s cookie: %d, cookies %v", what, resp.StatusCode, cs)
		}
		check("a "+what+" cookie", resp, page)
	}
	// A store failure while checking the cookie: a 500 page, and the log
	// names the failure, not the token.
	w.st.Close()
	resp, page = pageAs(t, srv, "mkt_session", good, "/", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("the store closed under a signed-in page: %d, want 500", resp.StatusCode)
	}
	check("a 500 page", resp, page)
	if l := logs.String(); strings.Contains(l, good) || !strings.Contains(l, "level=ERROR") {
		t.Errorf("the log has the token, or no error:\n%s", l)
	}
}

// TestWebHTTPSDropsThePlainHTTPCookie: a browser signed in while the index
// was reached over plain HTTP keeps sending mkt_session (not Secure, the
// token in it) after PublicURL became https. The index no longer reads it,
// so it must not leave it behind either: any page, and sign-out, expire it.
func TestWebHTTPSDropsThePlainHTTPCookie(t *testing.T) {
	w := newWebWorld(t, "https://index.example.com")
	token := w.tokens["acme"].Secret
	expired := func(resp *http.Response) bool {
		for _, c := range resp.Cookies() {
			if c.Name == "mkt_session" && c.MaxAge < 0 && c.Value == "" {
				return true
			}
		}
		return false
	}
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "mkt_session", Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, resp)
	if !expired(resp) {
		t.Errorf("a page over https left the plain-HTTP cookie holding the token: %v", resp.Cookies())
	}
	if strings.Contains(page, "Sign out") {
		t.Error("the plain-HTTP cookie signed the browser in over https")
	}
	req, _ = http.NewRequest(http.MethodPost, w.srv.URL+"/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: "mkt_session", Value: token})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err = noRedirect.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !expired(resp) {
		t.Errorf("sign-out over https left the plain-HTTP cookie: %v", resp.Cookies())
	}
	// Over plain HTTP the same cookie is the session: nothing drops it.
	plain := newWebWorld(t, "")
	req, _ = http.NewRequest(http.MethodGet, plain.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "mkt_session", Value: plain.tokens["acme"].Secret})
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	if page := body(t, resp); expired(resp) || !strings.Contains(page, "Sign out") {
		t.Errorf("over plain HTTP the session cookie was dropped or not honoured: %v", resp.Cookies())
	}
}
