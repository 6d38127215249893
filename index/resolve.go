package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
)

// catalogSource offers to the resolver what one viewer may see in the
// catalog, with the decisions made at ingest. It lives for one request and
// looks each name up once: the resolver asks for a name's versions and
// then for several of them.
type catalogSource struct {
	api    *API
	viewer *catalog.Viewer
	seen   map[string][]*store.Version // name → visible versions, newest first
}

func (s *catalogSource) versions(ctx context.Context, name string) ([]*store.Version, error) {
	if vs, ok := s.seen[name]; ok {
		return vs, nil
	}
	vs, err := s.api.Catalog.Lookup(ctx, s.viewer, name)
	if err != nil {
		return nil, err
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

func (s *catalogSource) Candidate(ctx context.Context, name, version string) (*policy.Candidate, error) {
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
func (a *API) candidate(ctx context.Context, h *store.Version) (*policy.Candidate, error) {
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

func candidateOf(v *store.Version) (*policy.Candidate, error) {
	ext, err := artifact.ParseConfig(v.Descriptor)
	if err != nil {
		return nil, fmt.Errorf("stored descriptor of %s@%s: %w", v.Name, v.Version, err)
	}
	c := &policy.Candidate{Name: v.Name, Version: v.Version, Repository: v.Repository, Reference: v.Repository + "@" + v.Digest,
		Digest: v.Digest, Extension: ext}
	if len(v.Decision) > 0 {
		c.Decision = &policy.Decision{}
		if err := json.Unmarshal(v.Decision, c.Decision); err != nil {
			return nil, fmt.Errorf("stored decision of %s@%s: %w", v.Name, v.Version, err)
		}
	}
	return c, nil
}

// resolve: GET /api/v1/resolve?name=&constraint=&factory=&explain=
func (a *API) resolve(w http.ResponseWriter, r *http.Request) {
	viewer, _, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	p := r.URL.Query()
	var reqs []policy.Requirement
	for _, n := range p["name"] {
		req, err := policy.ParseRequirement(n)
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
	res, err := policy.Resolve(r.Context(), &catalogSource{api: a, viewer: viewer}, reqs, policy.ResolveOptions{FactoryVersion: p.Get("factory")})
	if errors.Is(err, policy.ErrUnresolvable) {
		status := http.StatusUnprocessableEntity
		if strings.Contains(err.Error(), "no versions published") {
			status = http.StatusNotFound // also another tenant's private name
		}
		a.fail(w, &apiError{status, err.Error()})
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	if !explain {
		for _, s := range res.Selected {
			s.PassedOver = nil
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// Client is an index service as a resolution source, for `mkt resolve
// --index` and `mkt install --index`: the index chooses, the registry
// serves, the local policy verifies.
type Client struct {
	URL   string
	Token string
	HTTP  *http.Client
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.URL, "/")+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("index %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnprocessableEntity {
			return fmt.Errorf("%w: %s", policy.ErrUnresolvable, e.Error)
		}
		return fmt.Errorf("index %s%s: %d %s", c.URL, path, resp.StatusCode, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Resolve asks the index to resolve reqs for a Factory version.
func (c *Client) Resolve(ctx context.Context, reqs []policy.Requirement, factory string, explain bool) (*policy.Resolution, error) {
	q := url.Values{"factory": {factory}, "explain": {strconv.FormatBool(explain)}}
	for _, r := range reqs {
		n := r.Name
		if r.Constraint != "" {
			n += "@" + r.Constraint
		}
		q.Add("name", n)
	}
	var res policy.Resolution
	if err := c.get(ctx, "/api/v1/resolve", q, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
