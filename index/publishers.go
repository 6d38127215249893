package index

import (
	"context"
	"net/http"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/client"
)

// PublisherPage is a publisher as the API shows it: its tier, whether the
// operator's attestation backs that tier, its keys' fingerprints, and its
// extensions the caller may see.
type PublisherPage struct {
	Name string `json:"name"`
	// Tier is official, verified or community; a namespace without a
	// publishers: entry is community.
	Tier string `json:"tier"`
	// Verified is true only when the operator's publisher attestation
	// verifies for exactly this binding; Verification says why or why not.
	Verified     bool             `json:"verified"`
	Verification string           `json:"verification"`
	Keys         []string         `json:"keys"`
	Extensions   []client.Summary `json:"extensions"`
	Total        int              `json:"total"`
}

// publisherPage finds publisher name as viewer sees it; 404 when it has
// no publishers: entry and no extension the viewer may see.
func (a *API) publisherPage(ctx context.Context, viewer *catalog.Viewer, name string) (*PublisherPage, error) {
	pg := &PublisherPage{Name: name, Tier: "community", Verification: "no publishers: entry binds this namespace", Keys: []string{}, Extensions: []client.Summary{}}
	p := findPublisher(a.Publishers, name)
	if p != nil {
		pg.Tier, pg.Verified, pg.Verification = p.Tier, p.Verified, p.VerificationNote
		pg.Keys = append(pg.Keys, p.Fingerprints...)
	}
	items, total, err := a.Catalog.Search(ctx, catalog.Query{Publisher: name, Viewer: viewer, Limit: 100})
	if err != nil {
		return nil, err
	}
	if p == nil && total == 0 {
		return nil, &apiError{http.StatusNotFound, "no publisher " + name}
	}
	pg.Total = total
	for _, v := range items {
		s, err := a.summarize(ctx, v)
		if err != nil {
			return nil, err
		}
		pg.Extensions = append(pg.Extensions, s)
	}
	return pg, nil
}

// publisher: GET /api/v1/publishers/{name}
func (a *API) publisher(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	pg, err := a.publisherPage(r.Context(), viewer, r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// publisher is the publisher page of the web catalog.
func (wb *Web) publisher(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := wb.API.viewer(r)
	if err != nil {
		wb.fail(w, err)
		return
	}
	pg, err := wb.API.publisherPage(r.Context(), viewer, r.PathValue("name"))
	if err != nil {
		wb.fail(w, err)
		return
	}
	wb.render(w, "publisher", http.StatusOK, map[string]any{"Title": pg.Name, "P": pg})
}
