package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
)

// catalogSource offers to the resolver what one viewer may see in the
// catalog, with the decisions made at ingest. It lives for one request and
// looks each name up once: the resolver asks for a name's versions and
// then for several of them.
type catalogSource struct {
	api    *API
	viewer *catalog.Viewer
	seen   map[string][]*store.Version // name → visible versions, newest first
	// exclude holds NAME@VERSION the client refused: resolution goes on
	// as if they were not published.
	exclude map[string]bool
}

func (s *catalogSource) versions(ctx context.Context, name string) ([]*store.Version, error) {
	if vs, ok := s.seen[name]; ok {
		return vs, nil
	}
	vs, err := s.api.Catalog.Lookup(ctx, s.viewer, name)
	if err != nil {
		return nil, err
	}
	if len(s.exclude) > 0 {
		vs = slices.DeleteFunc(slices.Clone(vs), func(v *store.Version) bool { return s.exclude[name+"@"+v.Version] })
	}
	if s.seen == nil {
		s.seen = map[string][]*store.Version{}
	}
	s.seen[name] = vs
	return vs, nil
}

func (s *catalogSource) Versions(ctx context.Context, name string) ([]string, error) {
	vs, err := s.versions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out, nil
}

func (s *catalogSource) Candidate(ctx context.Context, name, version string) (*resolve.Candidate, error) {
	vs, err := s.versions(ctx, name)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(vs, func(v *store.Version) bool { return v.Version == version })
	if i < 0 {
		return nil, fmt.Errorf("%s@%s: %w", name, version, store.ErrNotFound)
	}
	return s.api.candidate(ctx, vs[i])
}

// candidateKey names one write of one version: a refresh (new evidence or
// decision) takes a new seq, so a cached candidate is never stale.
type candidateKey struct {
	tenant, name, version string
	seq                   int64
}

// candidate reads a version whole and parses its descriptor and decision,
// once per write of it: resolution is the hot path, the documents do not
// change.
func (a *API) candidate(ctx context.Context, h *store.Version) (*resolve.Candidate, error) {
	k := candidateKey{h.Tenant, h.Name, h.Version, h.Seq}
	if c, ok := a.candidates.Get(k); ok {
		return c, nil
	}
	v, err := a.Store.Version(ctx, h.Tenant, h.Name, h.Version)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", h.Name, h.Version, err)
	}
	c, err := candidateOf(v)
	if err != nil {
		return nil, err
	}
	a.candidates.Add(candidateKey{v.Tenant, v.Name, v.Version, v.Seq}, c)
	return c, nil
}

func candidateOf(v *store.Version) (*resolve.Candidate, error) {
	// The index's own record, written at ingest from a config already held
	// to the canonical form: its bytes (json.Marshal escapes < and >) need
	// not be canonical, so it is decoded and validated, not compared.
	ext := &artifact.Extension{}
	if err := json.Unmarshal(v.Descriptor, ext); err != nil {
		return nil, fmt.Errorf("stored descriptor of %s@%s: %w", v.Name, v.Version, err)
	}
	if err := ext.Validate(); err != nil {
		return nil, fmt.Errorf("stored descriptor of %s@%s: %w", v.Name, v.Version, err)
	}
	c := &resolve.Candidate{Name: v.Name, Version: v.Version, Repository: v.Repository, Reference: v.Repository + "@" + v.Digest,
		Digest: v.Digest, Extension: ext}
	if len(v.Decision) > 0 {
		c.Decision = &policy.Decision{}
		if err := json.Unmarshal(v.Decision, c.Decision); err != nil {
			return nil, fmt.Errorf("stored decision of %s@%s: %w", v.Name, v.Version, err)
		}
	}
	return c, nil
}

// resolve: GET /api/v1/resolve?name=&constraint=&factory=&explain=&exclude=
func (a *API) resolve(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	p := r.URL.Query()
	var reqs []resolve.Requirement
	for _, n := range p["name"] {
		req, err := resolve.ParseRequirement(n)
		if err != nil {
			a.fail(w, &apiError{http.StatusBadRequest, err.Error()})
			return
		}
		if req.Constraint == "" {
			req.Constraint = p.Get("constraint")
		}
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		a.fail(w, &apiError{http.StatusBadRequest, "name is required"})
		return
	}
	explain, _ := strconv.ParseBool(p.Get("explain"))
	src := &catalogSource{api: a, viewer: viewer}
	for _, e := range p["exclude"] {
		name, version, ok := strings.Cut(e, "@")
		if !ok || !artifact.ValidName(name) || version == "" {
			a.fail(w, &apiError{http.StatusBadRequest, fmt.Sprintf("exclude %q: want NAME@VERSION", e)})
			return
		}
		if src.exclude == nil {
			src.exclude = map[string]bool{}
		}
		src.exclude[e] = true
	}
	res, err := resolve.Resolve(r.Context(), src, reqs, resolve.Options{FactoryVersion: p.Get("factory")})
	if err != nil {
		if errors.Is(err, resolve.ErrUnresolvable) && len(src.exclude) > 0 {
			err = fmt.Errorf("%w (besides the %d versions the client excluded)", err, len(src.exclude))
		}
		a.fail(w, err) // errorAnswer: 404 when nothing is published, else 422
		return
	}
	for _, s := range res.Selected {
		if !explain {
			s.PassedOver = nil
		}
		// Clients refuse a reference outside these (DESIGN §6.1).
		s.BoundRepositories = a.BoundRepositories(s.Name)
	}
	writeJSON(w, http.StatusOK, res)
}
