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
}

// Register adds the page routes to mux.
func (wb *Web) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(webFiles, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", wb.search)
	mux.HandleFunc("GET /extensions/{publisher}/{name}", wb.extension)
	mux.HandleFunc("GET /reviews", wb.reviews)
	mux.HandleFunc("GET /publishers/{name}", wb.publisher)
	mux.HandleFunc("GET /statements", wb.statements)
}

// reviews is the review queue page, for the reviewer role (a bearer token
// as the API takes it): the same page of the queue the API serves.
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

func (wb *Web) render(w http.ResponseWriter, page string, status int, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages()[page].ExecuteTemplate(w, "layout", data); err != nil {
		wb.API.log().Error("render", "page", page, "err", err)
	}
}

// fail answers an error as plain text: the API's own status and message
// for what the caller got wrong, a logged 500 for the rest.
func (wb *Web) fail(w http.ResponseWriter, err error) {
	status, body, internal := errorAnswer(err)
	if internal {
		wb.API.log().Error("web", "err", err)
	}
	http.Error(w, body.Error.Message, status)
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
		"Impacts": impacts, "Usage": usage,
	})
}
