package index

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/impact"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/resolve"
	lru "github.com/hashicorp/golang-lru/v2"
)

// OpenAPI describes the HTTP API; it is served at /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// APIStore is what the API reads of a store: the change feed its catalog
// is kept by (unless Catalog is given), tokens, whole versions and alerts
// for details, and the store's health for /readyz.
type APIStore interface {
	catalog.Feed
	Token(ctx context.Context, hash string) (*store.Token, error)
	Version(ctx context.Context, tenant, name, version string) (*store.Version, error)
	Versions(ctx context.Context, tenant, name string) ([]*store.Version, error)
	Alerts(ctx context.Context, tenant string) ([]*store.Alert, error)
	Ping(ctx context.Context) error
}

// API serves /api/v1 (search, extension details, alerts) and the health
// endpoints. Handlers do HTTP and nothing else; the store decides
// visibility from the viewer.
type API struct {
	Store APIStore
	// Catalog serves search and resolution from memory; when nil, one is
	// made from Store on first use.
	Catalog *catalog.Catalog
	// Operator is the operator's own tenant, whose tokens see internal
	// extensions.
	Operator string
	// PublicURL is the index's address as users reach it, for the install
	// commands of the pages (Config.PublicURL).
	PublicURL string
	// Publishers are the index config's namespace bindings, for the
	// repositories a resolution may name (BoundRepositories).
	Publishers []Publisher
	// Impact answers GET /api/v1/impact; when nil, one is made from Store
	// on first use (the SQL stores keep the feed it follows).
	Impact *impact.Graph
	// Usage says which tenants used which versions, for impact; when nil,
	// the store's usage aggregate (store.UsageUsers) if it keeps one, else
	// the tenants that own the versions (impact.GraphTenants).
	Usage impact.Usage
	// Metering records install and seat reports and answers usage
	// queries; nil: the usage endpoints answer 404.
	Metering store.UsageStore
	Metrics  *Metrics // optional
	Log      *slog.Logger

	once       sync.Once
	candidates *lru.Cache[candidateKey, *resolve.Candidate]
	verdicts   *lru.Cache[candidateKey, string]
	readmes    *lru.Cache[string, *ReadmeView] // by manifest digest
}

// candidatesCached bounds the parsed descriptors and decisions kept for
// resolution (about 2 KiB each).
const candidatesCached = 8192

func (a *API) init() {
	a.once.Do(func() {
		if a.Catalog == nil {
			a.Catalog = catalog.New(a.Store)
		}
		if f, ok := a.Store.(store.LinkFeed); ok && a.Impact == nil {
			a.Impact = impact.New(f)
		}
		if u, ok := a.Store.(store.UsageUsers); ok && a.Usage == nil {
			a.Usage = usageTenants{u}
		}
		a.candidates, _ = lru.New[candidateKey, *resolve.Candidate](candidatesCached)
		a.verdicts, _ = lru.New[candidateKey, string](candidatesCached)
		a.readmes, _ = lru.New[string, *ReadmeView](readmesCached)
	})
}

// Handler routes the API; every response carries the security headers.
func (a *API) Handler() http.Handler {
	a.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/extensions", a.search)
	mux.HandleFunc("GET /api/v1/extensions/{publisher}/{name}", a.extension)
	mux.HandleFunc("GET /api/v1/alerts", a.alerts)
	mux.HandleFunc("GET /api/v1/statements", a.statements)
	mux.HandleFunc("GET /api/v1/resolve", a.resolve)
	mux.HandleFunc("GET /api/v1/reviews", a.reviews)
	mux.HandleFunc("GET /api/v1/publishers/{name}", a.publisher)
	mux.HandleFunc("GET /api/v1/impact", a.impact)
	if a.Metering != nil {
		mux.HandleFunc("POST /api/v1/usage/events", a.postUsageEvents)
		mux.HandleFunc("GET /api/v1/usage", a.getUsage)
	}
	mux.HandleFunc("GET /api/v1/subscriptions/dead-letters", a.deadLetters)
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	(&Web{API: a}).Register(mux)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Store.Ping(r.Context()); err != nil {
			http.Error(w, "store unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return withSecurityHeaders(mux)
}

// apiError is an error the caller made, answered with its status; its code
// is the status's (client.CodeOf).
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorAnswer maps an error to its answer by type, never by its text: the
// API's own errors keep their status, a name with no visible versions is a
// 404, another resolution failure a 422, anything else a 500 whose details
// stay in the log (internal reports which).
func errorAnswer(err error) (status int, body client.ErrorBody, internal bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, errorBody(client.CodeOf(ae.status), ae.msg), false
	case errors.Is(err, resolve.ErrNotPublished): // also another tenant's private name
		return http.StatusNotFound, errorBody(client.CodeNotPublished, err.Error()), false
	case errors.Is(err, resolve.ErrUnresolvable):
		return http.StatusUnprocessableEntity, errorBody(client.CodeUnresolvable, err.Error()), false
	}
	return http.StatusInternalServerError, errorBody(client.CodeInternal, "internal error"), true
}

func errorBody(code, message string) client.ErrorBody {
	return client.ErrorBody{Error: client.ErrorDetail{Code: code, Message: message}}
}

// viewer is the caller: anonymous, or the tenant of a valid bearer token.
// A page request without an Authorization header may carry the token of a
// sign-in cookie instead, which Web.page has checked and put in its context
// (pageSession); API routes never get one, so no cookie (nor a cross-site
// request that carries it) reaches the JSON API.
func (a *API) viewer(r *http.Request) (*catalog.Viewer, *store.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if s := pageSession(r.Context()); s != nil {
			return s.viewer, s.token, nil
		}
		return &catalog.Viewer{}, nil, nil
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, nil, &apiError{http.StatusUnauthorized, "Authorization must be a Bearer token"}
	}
	return a.tokenViewer(r.Context(), token)
}

// tokenViewer checks a token, from a bearer header or a sign-in cookie
// alike: unknown, revoked and expired tokens are a 401 (apiError), so a
// revoked token stops working at its next request.
func (a *API) tokenViewer(ctx context.Context, token string) (*catalog.Viewer, *store.Token, error) {
	t, err := a.Store.Token(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, &apiError{http.StatusUnauthorized, "unknown token"}
	}
	if err != nil {
		return nil, nil, err
	}
	switch t.State(time.Now()) {
	case store.TokenRevoked:
		return nil, nil, &apiError{http.StatusUnauthorized, "token revoked"}
	case store.TokenExpired:
		return nil, nil, &apiError{http.StatusUnauthorized, "token expired"}
	}
	return &catalog.Viewer{Tenant: t.Tenant, Operator: t.Tenant == a.Operator && a.Operator != "",
		Reviewer: slices.Contains(t.Roles, RoleReviewer)}, t, nil
}

func (a *API) fail(w http.ResponseWriter, err error) {
	status, body, internal := errorAnswer(err)
	if internal {
		a.log().Error("api", "err", err)
	}
	writeJSON(w, status, body)
}

func (a *API) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

const pageSize = 20

// maxPage bounds page= so that the offset it makes cannot overflow (a huge
// page would wrap around to the first results).
const maxPage = 1_000_000

// find runs a search from query parameters for a viewer; the JSON API and
// the web page both use it.
func (a *API) find(ctx context.Context, viewer *catalog.Viewer, p url.Values) (*client.SearchPage, error) {
	q := catalog.Query{Text: p.Get("q"), Publisher: p.Get("publisher"), License: p.Get("license"), Viewer: viewer}
	if v := p.Get("kind"); v != "" {
		// In any case, as mkt init and the CLI take it: "connector" used
		// to match nothing, silently.
		k, err := artifact.ParseKind(v)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, "kind: " + err.Error()}
		}
		q.Kind = string(k)
	}
	if v := p.Get("reviewed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, "reviewed: want true or false"}
		}
		q.Reviewed = &b
	}
	page := 1
	if v := p.Get("page"); v != "" {
		var err error
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > maxPage {
			return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("page: %q is not a number from 1 to %d", v, maxPage)}
		}
	}
	if v := p.Get("factory"); v != "" {
		var err error
		if q.Factory, err = semver.NewVersion(v); err != nil {
			return nil, &apiError{http.StatusBadRequest, "factory: not a version"}
		}
	}
	q.Limit, q.Offset = pageSize, (page-1)*pageSize
	items, total, err := a.Catalog.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &client.SearchPage{Items: make([]client.Summary, len(items)), Total: total, Page: page}
	for i, v := range items {
		if out.Items[i], err = a.summarize(ctx, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// search: GET /api/v1/extensions?q=&kind=&publisher=&factory=&reviewed=&license=&page=
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.find(r.Context(), viewer, r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// Verdicts of a stored decision (summary.Verdict, versionView.Verdict).
const (
	VerdictPassed         = "passed"           // every check passed
	VerdictDenied         = "denied"           // a check failed, enforce mode
	VerdictAuditWouldDeny = "audit-would-deny" // a check failed, audit mode: allowed, not passed
	VerdictNoPolicy       = "no-policy"        // the index has no policy: nothing was decided
)

// verdictOf reads a stored decision's verdict.
func verdictOf(decision []byte) (string, error) {
	if len(decision) == 0 {
		return VerdictNoPolicy, nil
	}
	var d struct {
		Passed bool   `json:"passed"`
		Mode   string `json:"mode"`
	}
	if err := json.Unmarshal(decision, &d); err != nil {
		return "", fmt.Errorf("stored decision: %w", err)
	}
	switch {
	case d.Passed:
		return VerdictPassed, nil
	case d.Mode == "audit":
		return VerdictAuditWouldDeny, nil
	}
	return VerdictDenied, nil
}

// verdict is v's verdict. Headers (search results, from the catalog) carry
// no decision, so it is read once per write of the version and cached.
func (a *API) verdict(ctx context.Context, v *store.Version) (string, error) {
	if len(v.Decision) > 0 {
		return verdictOf(v.Decision)
	}
	k := candidateKey{v.Tenant, v.Name, v.Version, v.Seq}
	if s, ok := a.verdicts.Get(k); ok {
		return s, nil
	}
	whole, err := a.Store.Version(ctx, v.Tenant, v.Name, v.Version)
	if err != nil {
		return "", fmt.Errorf("%s@%s: %w", v.Name, v.Version, err)
	}
	s, err := verdictOf(whole.Decision)
	if err != nil {
		return "", fmt.Errorf("%s@%s: %w", v.Name, v.Version, err)
	}
	a.verdicts.Add(candidateKey{whole.Tenant, whole.Name, whole.Version, whole.Seq}, s)
	return s, nil
}

func (a *API) summarize(ctx context.Context, v *store.Version) (client.Summary, error) {
	verdict, err := a.verdict(ctx, v)
	return client.Summary{Name: v.Name, Tenant: v.Tenant, Kind: v.Kind, Title: v.Title, Description: v.Description, Keywords: v.Keywords,
		Latest: v.Version, License: v.License, Factory: v.Factory, Signed: v.Signed, Reviewed: v.Reviewed, Allowed: v.Allowed,
		Verdict: verdict, Visibility: v.Visibility, Stage: v.Stage, Quarantined: v.Quarantined}, err
}

// versionView is a version in details: the stored version, its verdict,
// and why it is deprecated, yanked or blocked (lifecycleNote).
type versionView struct {
	*store.Version
	Verdict         string `json:"verdict"`
	LifecycleReason string `json:"lifecycleReason,omitempty"`
	Successor       string `json:"successor,omitempty"`
}

// details is an extension with its versions and alerts, and the overview
// of its latest version.
type details struct {
	Extension client.Summary `json:"extension"`
	Overview  *Overview      `json:"overview"`
	Versions  []versionView  `json:"versions"`
	Alerts    []*store.Alert `json:"alerts"`
}

// details finds name as the viewer sees it: its own tenant's first, with
// only the versions the viewer may see, highest first, and only their
// alerts (identity-mismatch alerts only to the tenant itself). Another
// tenant's private extension is not found, exactly like one that does not
// exist.
func (a *API) details(ctx context.Context, viewer *catalog.Viewer, name string) (*details, error) {
	seen, err := a.Catalog.Lookup(ctx, viewer, name)
	if err != nil {
		return nil, err
	}
	if len(seen) == 0 {
		return nil, &apiError{http.StatusNotFound, "no extension " + name}
	}
	latest := store.Latest(seen)
	tenant := latest.Tenant
	versions, err := a.Store.Versions(ctx, tenant, name)
	if err != nil {
		return nil, err
	}
	alerts, err := a.Store.Alerts(ctx, tenant)
	if err != nil {
		return nil, err
	}
	d := &details{}
	if d.Extension, err = a.summarize(ctx, latest); err != nil {
		return nil, err
	}
	visible := map[string]bool{}
	for _, v := range versions {
		if !viewer.CanSee(v) {
			continue
		}
		verdict, err := verdictOf(v.Decision)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", v.Name, v.Version, err)
		}
		reason, successor := lifecycleNote(v)
		d.Versions = append(d.Versions, versionView{v, verdict, reason, successor})
		visible[v.Version] = true
		if v.Version == latest.Version && d.Overview == nil {
			if d.Overview, err = a.overview(ctx, v, time.Now()); err != nil {
				return nil, err
			}
		}
	}
	for _, al := range alerts {
		if al.Name != name || !visible[al.Version] && al.Type != store.AlertIdentityMismatch ||
			al.Type == store.AlertIdentityMismatch && viewer.Tenant != tenant {
			continue
		}
		d.Alerts = append(d.Alerts, al)
	}
	return d, nil
}

// extension: GET /api/v1/extensions/{publisher}/{name}
func (a *API) extension(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	d, err := a.details(r.Context(), viewer, r.PathValue("publisher")+"/"+r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// alerts: GET /api/v1/alerts, for a tenant's token (its alerts) or an
// operator admin (all).
func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	viewer, tok, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if tok == nil {
		a.fail(w, &apiError{http.StatusUnauthorized, "alerts need a token"})
		return
	}
	tenant := viewer.Tenant
	if viewer.Operator && slices.Contains(tok.Roles, "admin") {
		tenant = ""
	}
	alerts, err := a.Store.Alerts(r.Context(), tenant)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": alerts})
}
