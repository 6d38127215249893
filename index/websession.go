package index

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
)

// Signing in to the pages (docs/index.md, "Web catalog"): a person pastes
// an index token into the sign-in form (POST /signin, never a URL, which
// would land in histories and logs); the index checks it as the API checks
// a bearer token and keeps it in an HttpOnly, SameSite=Strict cookie for
// Path=/, Secure when the index's PublicURL is https. Page requests then
// take their viewer from the cookie (Web.page), checked again at every
// request, so a revoked token stops working at once. The JSON API never
// reads the cookie: it stays bearer-only, out of reach of cross-site
// requests.

// Sign-in cookie names: with a Secure cookie the __Host- prefix makes the
// browser refuse one set without Secure, for another path or for a parent
// domain (a sibling subdomain cannot plant or shadow it).
const (
	sessionCookie       = "mkt_session"
	secureSessionCookie = "__Host-mkt_session"
)

// maxSignInForm bounds the sign-in form's body: a token is 47 bytes.
const maxSignInForm = 8 << 10

// session is who signed in to the pages, from the sign-in cookie.
type session struct {
	Tenant    string
	RolesText string // "reader, publisher", for the header
	Reviewer  bool
	viewer    *catalog.Viewer
	token     *store.Token
}

type sessionKey struct{}

// pageSession is the session Web.page put in a page request's context;
// nil for API requests and signed-out pages.
func pageSession(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// pageWriter carries a page request to render and fail, which show who is
// signed in and link back to the page after signing in, without every
// handler passing the request along.
type pageWriter struct {
	http.ResponseWriter
	r *http.Request
}

// secure says whether the index is reached over https (its PublicURL), so
// that the cookie is Secure.
func (wb *Web) secure() bool {
	return strings.HasPrefix(strings.ToLower(wb.API.PublicURL), "https://")
}

func (wb *Web) cookieName() string {
	if wb.secure() {
		return secureSessionCookie
	}
	return sessionCookie
}

func (wb *Web) setCookie(w http.ResponseWriter, token string, tok *store.Token) {
	http.SetCookie(w, &http.Cookie{Name: wb.cookieName(), Value: token, Path: "/", HttpOnly: true,
		Secure: wb.secure(), SameSite: http.SameSiteStrictMode, Expires: tok.ExpiresAt})
}

func (wb *Web) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: wb.cookieName(), Value: "", Path: "/", HttpOnly: true,
		Secure: wb.secure(), SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// dropPlainCookie expires the plain-HTTP cookie (sessionCookie) that a
// browser still sends to an index now reached over https: one signed in
// before PublicURL became https keeps the token in a cookie that is not
// Secure, which the index no longer reads and sign-out would not clear.
func (wb *Web) dropPlainCookie(w http.ResponseWriter, r *http.Request) {
	if !wb.secure() {
		return
	}
	if _, err := r.Cookie(sessionCookie); err == nil {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	}
}

// page wraps a page handler: it checks the sign-in cookie (unless the
// request has a bearer token of its own, which API.viewer then checks) and
// puts the session in the request's context. A cookie whose token the
// index no longer accepts (unknown, revoked, expired) is cleared, and the
// answer is the sign-in page saying why, with a 401.
func (wb *Web) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wb.dropPlainCookie(w, r)
		pw := &pageWriter{ResponseWriter: w, r: r}
		c, err := r.Cookie(wb.cookieName())
		if r.Header.Get("Authorization") != "" || err != nil || c.Value == "" {
			h(pw, r)
			return
		}
		viewer, tok, err := wb.API.tokenViewer(r.Context(), c.Value)
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			next := localPath(r.URL.RequestURI())
			if r.URL.Path == "/signin" { // the sign-in form itself: go on to where it was going
				next = localPath(r.URL.Query().Get("next"))
			}
			wb.clearCookie(w)
			wb.render(pw, "signin", http.StatusUnauthorized, map[string]any{"Title": "Sign in again",
				"Next": next,
				"Error": "You were signed out: this index no longer accepts the token you signed in with (" + ae.msg +
					"). Sign in again with a valid token to see what it may see; until then you see what anyone may."})
			return
		case err != nil:
			wb.fail(pw, err)
			return
		}
		s := &session{Tenant: tok.Tenant, RolesText: strings.Join(tok.Roles, ", "), Reviewer: viewer.Reviewer, viewer: viewer, token: tok}
		pw.r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		h(pw, pw.r)
	}
}

// signinForm is the sign-in page; next, when a local path, is where a
// successful sign-in goes.
func (wb *Web) signinForm(w http.ResponseWriter, r *http.Request) {
	wb.render(w, "signin", http.StatusOK, map[string]any{"Title": "Sign in", "Next": localPath(r.URL.Query().Get("next"))})
}

// signin takes the token from the form body, checks it and sets the
// cookie. A token the index refuses is a 401 sign-in page that says why
// and sets nothing; the token is never echoed back.
func (wb *Web) signin(w http.ResponseWriter, r *http.Request) {
	pw := &pageWriter{ResponseWriter: w, r: r}
	if !wb.sameOrigin(pw, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInForm)
	if err := r.ParseForm(); err != nil {
		wb.errorPage(pw, http.StatusBadRequest, "the sign-in form could not be read: "+err.Error())
		return
	}
	next := localPath(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		wb.render(pw, "signin", http.StatusBadRequest, map[string]any{"Title": "Sign in", "Next": next,
			"Error": "Paste an index token into the Token field (it starts with mkt_)."})
		return
	}
	_, tok, err := wb.API.tokenViewer(r.Context(), token)
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		wb.render(pw, "signin", http.StatusUnauthorized, map[string]any{"Title": "Sign in", "Next": next,
			"Error": "This index refuses that token: " + ae.msg + ". Check that you pasted the whole token and that it was made " +
				"for this index; if it was revoked or has expired, ask the index's operator for a new one (mkt index token create)."})
		return
	case err != nil:
		wb.fail(pw, err)
		return
	}
	wb.setCookie(w, token, tok)
	seeOther(w, r, next)
}

// signout clears the cookie and goes to the catalog.
func (wb *Web) signout(w http.ResponseWriter, r *http.Request) {
	pw := &pageWriter{ResponseWriter: w, r: r}
	if !wb.sameOrigin(pw, r) {
		return
	}
	wb.clearCookie(w)
	wb.dropPlainCookie(w, r)
	seeOther(w, r, "/")
}

// seeOther redirects after a sign-in or sign-out, whose answer sets the
// cookie (the token itself, at sign-in): no-store, so that no cache, shared
// or the browser's, keeps it and hands it to another request.
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// sameOrigin refuses (403) a cross-site POST: SameSite=Strict already
// keeps the cookie off it, but a forged sign-in (login CSRF: the victim
// signed in as the attacker) or sign-out needs no cookie. Browsers say
// where a request comes from in Sec-Fetch-Site, older ones in Origin,
// which must then be the index's own (its Host, or its PublicURL behind a
// proxy); a client that sends neither is no browser, whose cookies a
// forged form could ride.
func (wb *Web) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := wb.crossOrigin.Check(r); err != nil {
		wb.errorPage(w, http.StatusForbidden, "This form was sent from another site, so the index refused it. "+
			"Use the index's own sign-in page.")
		return false
	}
	return true
}

// newCrossOrigin is the check sameOrigin applies: Go's, trusting the
// PublicURL's origin too.
func newCrossOrigin(publicURL string) *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	if u, err := url.Parse(publicURL); err == nil && u.Scheme != "" && u.Host != "" {
		c.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	return c
}

// localPath is next if it is a path on this index ("/reviews?stage=x"),
// else "/": a sign-in never redirects to another site (open redirect), not
// through "//host", "/\host" or a scheme either.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\\\r\n\t\x00") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
