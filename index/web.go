package index

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
)

//go:embed web/templates web/static
var webFiles embed.FS

// pages are parsed once, on first use rather than at start-up, which
// every mkt command would pay for. web/templates/layout.html holds the
// layout and the partials every page shares; each other file there is one
// page, named after it, whose body is the template "<page>-body".
var pages = sync.OnceValue(func() map[string]*template.Template {
	base := template.Must(template.ParseFS(webFiles, "web/templates/layout.html"))
	files, err := fs.Glob(webFiles, "web/templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		p := strings.TrimSuffix(path.Base(f), ".html")
		if p == "layout" {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(webFiles, f))
		template.Must(t.Parse(`{{define "body"}}{{template "` + p + `-body" .}}{{end}}`))
		out[p] = t
	}
	return out
})

// Web serves the catalog page at / and extension pages at
// /extensions/{publisher}/{name}, rendered on the server from the same
// search and details the API serves, as anonymous callers see them.
//
// Install commands show the API's PublicURL (Config.PublicURL), or a
// placeholder without one: the request's Host header is the caller's to
// choose, and echoing it would let a forged Host (through a cache, or a
// link) put another index into the command people copy.
type Web struct {
	API *API

	crossOrigin *http.CrossOriginProtection
}

// Register adds the page routes to mux: the pages, signing in and out, and
// a friendly 404 page for any other path outside /api/, whose unknown
// paths answer JSON like the rest of the API.
func (wb *Web) Register(mux *http.ServeMux) {
	wb.crossOrigin = newCrossOrigin(wb.API.PublicURL)
	static, _ := fs.Sub(webFiles, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", wb.page(wb.search))
	mux.HandleFunc("GET /extensions/{publisher}/{name}", wb.page(wb.extension))
	mux.HandleFunc("GET /reviews", wb.page(wb.reviews))
	mux.HandleFunc("GET /publishers/{name}", wb.page(wb.publisher))
	mux.HandleFunc("GET /statements", wb.page(wb.statements))
	mux.HandleFunc("GET /signin", wb.page(wb.signinForm))
	mux.HandleFunc("POST /signin", wb.signin)
	mux.HandleFunc("POST /signout", wb.signout)
	mux.HandleFunc("/", wb.page(func(w http.ResponseWriter, r *http.Request) {
		wb.errorPage(w, http.StatusNotFound, "There is no page at this address.")
	}))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody(client.CodeNotFound, "no API endpoint "+r.Method+" "+r.URL.Path+" (see /api/v1/openapi.json)"))
	})
}

// reviews is the review queue page, for the reviewer role (a bearer token
// as the API takes it, or the sign-in cookie): the same page of the queue
// the API serves.
func (wb *Web) reviews(w http.ResponseWriter, r *http.Request) {
	viewer, err := wb.API.reviewer(r)
	if err != nil {
		wb.fail(w, err)
		return
	}
	q := r.URL.Query()
	res, err := wb.API.reviewQueue(r.Context(), viewer, q)
	if err != nil {
		wb.fail(w, err)
		return
	}
	status := q.Get("status")
	if status == "" {
		status = ReviewPending
	}
	wb.render(w, "reviews", http.StatusOK, map[string]any{
		"Title": "Review queue", "Stage": q.Get("stage"), "Status": status, "Stages": StageNames, "Items": res.Items, "Total": res.Total,
	})
}

// render writes a page in the layout, with who is signed in (the session
// of a pageWriter, see Web.page) for the header.
func (wb *Web) render(w http.ResponseWriter, page string, status int, data map[string]any) {
	data["Page"] = page
	if pw, ok := w.(*pageWriter); ok {
		if s := pageSession(pw.r.Context()); s != nil {
			data["Session"] = s
		}
		if _, ok := data["Here"]; !ok {
			data["Here"] = localPath(pw.r.URL.RequestURI())
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // pages differ by who is signed in
	w.WriteHeader(status)
	if err := pages()[page].ExecuteTemplate(w, "layout", data); err != nil {
		wb.API.log().Error("render", "page", page, "err", err)
	}
}

// fail answers an error as an error page: the API's own status and
// message for what the caller got wrong, a logged 500 without its details
// for the rest.
func (wb *Web) fail(w http.ResponseWriter, err error) {
	status, body, internal := errorAnswer(err)
	if internal {
		wb.API.log().Error("web", "err", err)
	}
	wb.errorPage(w, status, body.Error.Message)
}

// errorPage is the page of an error: what went wrong (message, which says
// nothing internal) and what to do next, by status.
func (wb *Web) errorPage(w http.ResponseWriter, status int, message string) {
	title, next := "Something went wrong", "Go back to the catalog and try again."
	switch status {
	case http.StatusBadRequest:
		title, next = "That request is not valid", "Correct the search or the address and try again."
	case http.StatusUnauthorized:
		title, next = "Sign in to see this page", "Sign in with an index token that may see it."
	case http.StatusForbidden:
		title, next = "Not allowed", "Sign in with a token that has the role this page needs, or ask the index's operator for one."
	case http.StatusNotFound:
		title, next = "Not found", "It may not exist, or be private to a tenant: signed in with that tenant's token, you would see it. Search the catalog for it."
	case http.StatusInternalServerError:
		message = "The index could not answer this request."
		next = "Try again in a moment. If it keeps failing, tell the index's operator (the details are in the index's log)."
	}
	wb.render(w, "error", status, map[string]any{"Title": title, "Status": status, "Message": message, "Advice": next,
		"SignIn": status == http.StatusUnauthorized || status == http.StatusForbidden})
}

func (wb *Web) search(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := wb.API.viewer(r)
	if err != nil {
		wb.fail(w, err)
		return
	}
	q := r.URL.Query()
	res, err := wb.API.find(r.Context(), viewer, q)
	if err != nil {
		wb.fail(w, err)
		return
	}
	kinds := make([]string, len(artifact.Kinds))
	for i, k := range artifact.Kinds {
		kinds[i] = string(k)
	}
	wb.render(w, "search", http.StatusOK, map[string]any{
		"Title": "Catalog", "Q": q.Get("q"), "Kind": q.Get("kind"), "Factory": q.Get("factory"), "Kinds": kinds,
		"Items": res.Items, "Total": res.Total, "CompatibleWith": q.Get("factory"),
	})
}

func (wb *Web) extension(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := wb.API.viewer(r)
	if err != nil {
		wb.fail(w, err)
		return
	}
	name := r.PathValue("publisher") + "/" + r.PathValue("name")
	d, err := wb.API.details(r.Context(), viewer, name)
	if err != nil {
		wb.fail(w, err)
		return
	}
	indexURL := wb.API.PublicURL
	if indexURL == "" {
		indexURL = "INDEX_URL"
	}
	impacts, err := wb.API.pageImpacts(r.Context(), viewer, d.Versions)
	if err != nil {
		wb.fail(w, err)
		return
	}
	usage, err := wb.usageChart(r, d.Extension.Name, time.Now())
	if err != nil {
		wb.fail(w, err)
		return
	}
	wb.render(w, "extension", http.StatusOK, map[string]any{
		"Title": name, "Ext": d.Extension, "Versions": d.Versions, "Alerts": d.Alerts, "IndexURL": strings.TrimSuffix(indexURL, "/"),
		"Impacts": impacts, "Usage": usage, "Overview": d.Overview,
	})
}
