package index_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
)

func newTestServer(t *testing.T, c *index.Config) *index.Server {
	t.Helper()
	c.Store, c.WebhookSecret, c.Dir = "sqlite://index.db", "s", t.TempDir()
	s, err := index.NewServer(context.Background(), c, remote.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every response, page, JSON, static file, error and webhook answer,
// carries the security headers, and the CSP allows no inline code.
func TestEveryResponseCarriesSecurityHeaders(t *testing.T) {
	s := newTestServer(t, &index.Config{})
	defer s.Store.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	want := map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	}
	for _, path := range []string{"/", "/?page=0", "/extensions/acme/none", "/api/v1/extensions", "/api/v1/openapi.json", "/static/catalog.css",
		"/healthz", "/readyz", "/metrics", "/no/such/route", "POST /api/v1/events/registry"} {
		method := http.MethodGet
		if m, p, ok := strings.Cut(path, " "); ok {
			method, path = m, p
		}
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"events":[]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for h, v := range want {
			if got := resp.Header.Get(h); got != v {
				t.Errorf("%s %s (%d): %s is %q, want %q", method, path, resp.StatusCode, h, got, v)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s %s: Content-Security-Policy %q", method, path, csp)
		}
		// The one script the pages load is /static/copy.js: scripts from
		// the index only, never inline, eval'd or from another origin.
		for _, d := range strings.Split(csp, ";") {
			d = strings.TrimSpace(d)
			if strings.HasPrefix(d, "script-src") && d != "script-src 'self'" || strings.Contains(d, "unsafe-eval") ||
				strings.Contains(d, "*") || strings.Contains(d, "http:") || strings.Contains(d, "https:") || strings.Contains(d, "data:") {
				t.Errorf("%s %s: Content-Security-Policy directive %q allows more than the index's own files", method, path, d)
			}
		}
	}
}

// A huge page= is refused, not wrapped around to the first page.
func TestHugePageIsABadRequest(t *testing.T) {
	w := newAPIWorld(t)
	for page, code := range map[string]int{
		"461168601842738791":  http.StatusBadRequest, // (page-1)*20 overflows int64
		"9223372036854775807": http.StatusBadRequest,
		"1000001":             http.StatusBadRequest,
		"0":                   http.StatusBadRequest,
		"1000000":             http.StatusOK, // past the end: an empty page
		"1":                   http.StatusOK,
	} {
		var r searchResult
		if got := w.get(t, "", "/api/v1/extensions?page="+page, &r); got != code {
			t.Errorf("page=%s: %d, want %d", page, got, code)
		}
		if code == http.StatusOK && page != "1" && len(r.Items) != 0 {
			t.Errorf("page=%s shows %d items of %d", page, len(r.Items), r.Total)
		}
		resp, err := http.Get(w.srv.URL + "/?page=" + page)
		if err != nil {
			t.Fatal(err)
		}
		if b := body(t, resp); resp.StatusCode != code {
			t.Errorf("web page=%s: %d %q, want %d", page, resp.StatusCode, b, code)
		}
	}
}

// The install command names the configured publicURL, never the Host
// header the request came with (it is the caller's to forge); without a
// publicURL it shows a placeholder.
func TestForgedHostNeverAppearsInThePage(t *testing.T) {
	for _, public := range []string{"https://index.example.com", ""} {
		st := newAPIWorld(t).st
		srv := httptest.NewServer((&index.API{Store: st, PublicURL: public}).Handler())
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/extensions/acme/public-crm", nil)
		req.Host = "evil.example:8443"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		srv.Close()
		want := "--index " + public
		if public == "" {
			want = "--index INDEX_URL"
		}
		if resp.StatusCode != 200 || strings.Contains(page, "evil.example") || !strings.Contains(page, want) {
			t.Errorf("publicURL %q, forged Host: %d, page has evil.example: %v, has %q: %v", public, resp.StatusCode,
				strings.Contains(page, "evil.example"), want, strings.Contains(page, want))
		}
	}
}

// An idle keep-alive connection is closed by the server after the idle
// timeout instead of being held open forever.
func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	if index.DefaultIdleTimeout <= 0 || index.DefaultIdleTimeout > 2*time.Minute {
		t.Fatalf("default idle timeout %s", index.DefaultIdleTimeout)
	}
	s := newTestServer(t, &index.Config{IdleTimeout: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { stop(); <-done }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: index\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d %q, close %v", resp.StatusCode, b, resp.Close)
	}
	// Idle now: the server must close it. The read is bounded so that a
	// server that never closes fails the test instead of hanging it.
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = r.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the idle connection was still open after %s", time.Since(start).Round(time.Millisecond))
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want the server to close it", err)
	}
	t.Logf("idle connection closed after %s", time.Since(start).Round(time.Millisecond))
}

// A failed decision in audit mode allows the version but is not shown as
// passed: the badge says it would be denied, in the API and the page.
func TestAuditModeFailureIsNotShownAsPassed(t *testing.T) {
	w := newAPIWorld(t)
	failed := &policy.Decision{Allowed: true, Mode: "audit", Checks: []policy.Check{{Name: "signature", Reason: "no signature by a trusted key"}}}
	passed := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce", Checks: []policy.Check{{Name: "signature", Passed: true, Reason: "signed"}}}
	denied := &policy.Decision{Mode: "enforce", Checks: []policy.Check{{Name: "signature", Reason: "unsigned"}}}
	storeExt(t, w.st, "acme", store.Public, "acme/audited", "1.0.0", ">=2.0.0", "", failed)
	storeExt(t, w.st, "acme", store.Public, "acme/good", "1.0.0", ">=2.0.0", "", passed)
	storeExt(t, w.st, "acme", store.Public, "acme/bad", "1.0.0", ">=2.0.0", "", denied)
	for name, want := range map[string]struct{ verdict, badge string }{
		"acme/audited":    {index.VerdictAuditWouldDeny, "audit: would be denied"},
		"acme/good":       {index.VerdictPassed, "policy passed"},
		"acme/bad":        {index.VerdictDenied, "policy not passed"},
		"acme/public-crm": {index.VerdictNoPolicy, "no policy"},
	} {
		var r struct {
			Items []struct{ Name, Verdict string }
		}
		w.get(t, "", "/api/v1/extensions?q="+url.QueryEscape(name), &r)
		if len(r.Items) != 1 || r.Items[0].Verdict != want.verdict {
			t.Errorf("search %s: %+v, want verdict %s", name, r.Items, want.verdict)
		}
		var d struct {
			Extension struct{ Verdict string }
			Versions  []struct{ Verdict string }
		}
		w.get(t, "", "/api/v1/extensions/"+name, &d)
		if d.Extension.Verdict != want.verdict || len(d.Versions) == 0 || d.Versions[0].Verdict != want.verdict {
			t.Errorf("details %s: %+v, want verdict %s", name, d, want.verdict)
		}
		resp, err := http.Get(w.srv.URL + "/extensions/" + name)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		if !strings.Contains(page, want.badge) || want.verdict != index.VerdictPassed && strings.Contains(page, "policy passed") {
			t.Errorf("page of %s lacks %q or shows a green policy passed", name, want.badge)
		}
	}
}

// Visibility is per version: when acme/mixed has a public 1.0.0 and a
// private 2.0.0, anonymous callers and other tenants see 1.0.0 only, in
// search, details (versions and alerts), resolve and the page; acme sees
// both.
func TestPrivateVersionsOfAPublicExtensionDoNotLeak(t *testing.T) {
	w := newAPIWorld(t)
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce"}
	storeExt(t, w.st, "acme", store.Public, "acme/mixed", "1.0.0", ">=1.5.0", "", ok)
	storeExt(t, w.st, "acme", store.Private, "acme/mixed", "2.0.0", ">=1.5.0", "", ok)
	// A moved tag on the private version raises an alert about it.
	w.st.UpsertVersion(context.Background(), &store.Version{Tenant: "acme", Name: "acme/mixed", Version: "2.0.0", Repository: "reg.example/acme/mixed",
		Digest: "sha256:private-moved", Kind: "Module", Visibility: store.Private})
	privateDigest := "sha256:acmemixed2.0.0"
	for _, who := range []string{"", "globex", "acme"} {
		own := who == "acme"
		var r searchResult
		w.get(t, who, "/api/v1/extensions?q=mixed", &r)
		if r.Total != 1 || (r.Items[0].LatestVersion == "2.0.0") != own {
			t.Errorf("%q searches: %+v", who, r)
		}
		var d struct {
			Extension struct{ LatestVersion string }
			Versions  []store.Version
			Alerts    []store.Alert
		}
		w.get(t, who, "/api/v1/extensions/acme/mixed", &d)
		if n := len(d.Versions); own && n != 2 || !own && (n != 1 || d.Versions[0].Version != "1.0.0") {
			t.Errorf("%q sees versions %+v", who, d.Versions)
		}
		if (len(d.Alerts) == 1) != own {
			t.Errorf("%q sees alerts %+v", who, d.Alerts)
		}
		var res struct {
			Selected []struct{ Version, Digest string }
		}
		w.get(t, who, "/api/v1/resolve?name=acme/mixed&factory=2.5.0", &res)
		if len(res.Selected) != 1 || (res.Selected[0].Digest == privateDigest) != own {
			t.Errorf("%q resolves %+v", who, res.Selected)
		}
		if who == "" {
			resp, err := http.Get(w.srv.URL + "/extensions/acme/mixed")
			if err != nil {
				t.Fatal(err)
			}
			if page := body(t, resp); strings.Contains(page, "2.0.0") || strings.Contains(page, "private-moved") || !strings.Contains(page, "1.0.0") {
				t.Errorf("the anonymous page shows the private version")
			}
		}
	}
}
