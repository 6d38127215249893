package index

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/impact"
	"github.com/connectsoft/marketplace/index/store"
)

// The roles impact and the dead letters check (Roles lists them all).
const (
	rolePublisher = "publisher"
	roleAdmin     = "admin"
)

// impactGraph is the API's impact graph, made from the store on first use
// when the API was given none.
func (a *API) impactGraph() (*impact.Graph, error) {
	if a.Impact != nil {
		return a.Impact, nil
	}
	return nil, errors.New("impact: the store keeps no dependency feed (store.LinkFeed)")
}

// impact: GET /api/v1/impact?name=&version= | digest= | key=
//
// Who may ask: the operator's admin (everything), and a tenant's publisher
// or admin for the versions its own tenant published; it then sees the
// dependents it may see anyway and its own tenant, and only counts of the
// rest, so that the answer names no other tenant's private extension or
// customer. A query whose versions the caller cannot see at all is a 404,
// exactly like one that names nothing.
func (a *API) impact(w http.ResponseWriter, r *http.Request) {
	viewer, tok, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if tok == nil {
		a.fail(w, &apiError{http.StatusUnauthorized, "impact needs a token: the operator's admin, or a publisher for its own versions"})
		return
	}
	p := r.URL.Query()
	q := client.ImpactQuery{Name: p.Get("name"), Version: p.Get("version"), Digest: p.Get("digest"), Key: p.Get("key")}
	rep, err := a.blastRadius(r.Context(), viewer, tok, q)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// blastRadius answers an impact query for a caller (the API and the web
// page of a yanked or blocked version both use it).
func (a *API) blastRadius(ctx context.Context, viewer *catalog.Viewer, tok *store.Token, q client.ImpactQuery) (*client.Impact, error) {
	all := viewer.Operator && tok != nil && slices.Contains(tok.Roles, roleAdmin)
	if !all && (tok == nil || !slices.Contains(tok.Roles, rolePublisher) && !slices.Contains(tok.Roles, roleAdmin)) {
		return nil, &apiError{http.StatusForbidden, "impact is for the operator's admins and for a publisher's own versions (role publisher or admin)"}
	}
	g, err := a.impactGraph()
	if err != nil {
		return nil, err
	}
	iq := impact.Query{Name: q.Name, Version: q.Version, Digest: q.Digest, Key: q.Key}
	if !all {
		iq.Tenant = viewer.Tenant // only the caller's own versions start its blast
	}
	ans, err := g.Impact(ctx, iq)
	if errors.Is(err, impact.ErrBadQuery) {
		return nil, &apiError{http.StatusBadRequest, err.Error()}
	}
	if err != nil {
		return nil, err
	}
	if len(ans.Targets) == 0 {
		// Another tenant's versions, or none: which one only if the caller
		// may see them, so that a private version's existence stays hidden.
		iq.Tenant = ""
		others, err := g.Impact(ctx, iq)
		if err != nil {
			return nil, err
		}
		for i := range others.Targets {
			if t := &others.Targets[i]; viewer.CanSee(&store.Version{Tenant: t.Tenant, Visibility: t.Visibility, Lifecycle: t.Lifecycle, Quarantined: t.Quarantined}) {
				return nil, &apiError{http.StatusForbidden, "the impact of " + describeImpactQuery(q) +
					" is for its publisher's tenant and the operator's admins"}
			}
		}
		return nil, &apiError{http.StatusNotFound, "no version visible to you matches " + describeImpactQuery(q)}
	}
	rep := &client.Impact{Query: q, Targets: []client.ImpactVersion{}, Dependents: []client.ImpactVersion{},
		Tenants: []client.ImpactTenant{}, TenantsFrom: "graph"}
	for i := range ans.Targets {
		rep.Targets = append(rep.Targets, impactVersion(&ans.Targets[i]))
	}
	for i := range ans.Dependents {
		d := &ans.Dependents[i]
		if all || viewer.CanSee(&store.Version{Tenant: d.Tenant, Visibility: d.Visibility, Lifecycle: d.Lifecycle, Quarantined: d.Quarantined}) {
			rep.Dependents = append(rep.Dependents, impactVersion(d))
		} else {
			rep.HiddenDependents++
		}
	}
	usage := a.Usage
	if usage == nil {
		usage = impact.GraphTenants{}
	} else {
		rep.TenantsFrom = "usage"
	}
	used, err := usage.TenantsUsing(ctx, ans.Versions())
	if err != nil {
		return nil, err
	}
	tenants := make([]string, 0, len(used))
	for t := range used {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		if !all && t != viewer.Tenant {
			rep.OtherTenants++
			continue
		}
		it := client.ImpactTenant{Tenant: t}
		for _, v := range used[t] {
			it.Versions = append(it.Versions, client.ImpactRef(v))
		}
		rep.Tenants = append(rep.Tenants, it)
	}
	return rep, nil
}

func impactVersion(n *impact.Node) client.ImpactVersion {
	v := client.ImpactVersion{ImpactRef: client.ImpactRef(n.Version), Visibility: n.Visibility, Lifecycle: n.Lifecycle,
		Depth: n.Depth, Constraint: n.Constraint}
	if n.Via != nil {
		via := client.ImpactRef(*n.Via)
		v.Via = &via
	}
	return v
}

func describeImpactQuery(q client.ImpactQuery) string {
	switch {
	case q.Digest != "":
		return q.Digest
	case q.Key != "":
		return "key " + q.Key
	}
	return q.Name + "@" + q.Version
}

// pageImpact is the blast radius an extension page shows under a yanked
// or blocked version: the dependents the page's viewer may see, nothing
// about tenants (a page is no place for another tenant's customers).
type pageImpact struct {
	Version, Lifecycle string
	Dependents         []client.ImpactVersion
}

// pageImpacts computes the page's blast radii, for the versions that are
// yanked or blocked.
func (a *API) pageImpacts(ctx context.Context, viewer *catalog.Viewer, versions []versionView) ([]pageImpact, error) {
	var out []pageImpact
	for _, v := range versions {
		if v.Lifecycle != "yanked" && v.Lifecycle != "blocked" {
			continue
		}
		g, err := a.impactGraph()
		if err != nil {
			return nil, err
		}
		ans, err := g.Impact(ctx, impact.Query{Name: v.Name, Version: v.Version.Version, Tenant: v.Tenant})
		if err != nil {
			return nil, err
		}
		p := pageImpact{Version: v.Version.Version, Lifecycle: v.Lifecycle}
		for i := range ans.Dependents {
			d := &ans.Dependents[i]
			if viewer.CanSee(&store.Version{Tenant: d.Tenant, Visibility: d.Visibility, Lifecycle: d.Lifecycle, Quarantined: d.Quarantined}) {
				p.Dependents = append(p.Dependents, impactVersion(d))
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// usageTenants is impact.Usage over the usage aggregate (issue 12): the
// tenants that pulled, installed or reported seats of each version.
type usageTenants struct{ st store.UsageUsers }

func (u usageTenants) TenantsUsing(ctx context.Context, vs []impact.Version) (map[string][]impact.Version, error) {
	type key struct{ name, version string }
	wanted := map[key][]impact.Version{} // one name and version can be several tenants' copies
	var names []string
	for _, v := range vs {
		k := key{v.Name, v.Version}
		if _, ok := wanted[k]; !ok && !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
		wanted[k] = append(wanted[k], v)
	}
	out := map[string][]impact.Version{}
	err := u.st.UsersOf(ctx, names, func(tenant, name, version string) {
		if used := wanted[key{name, version}]; len(used) > 0 {
			out[tenant] = append(out[tenant], used...)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
