package client

import (
	"context"
	"net/url"
)

// ImpactQuery names where a blast radius starts (GET /api/v1/impact): a
// name and version, a manifest digest, or a publisher key's fingerprint.
type ImpactQuery struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Key     string `json:"key,omitempty"`
}

// ImpactRef names a version by tenant, name, version and digest.
type ImpactRef struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// ImpactVersion is a version of the blast radius: a target (depth 0) or
// a dependent, with the version it depends on that brought it in (via)
// and the constraint of its descriptor that admits that version.
type ImpactVersion struct {
	ImpactRef
	Visibility string     `json:"visibility"`
	Lifecycle  string     `json:"lifecycle,omitempty"`
	Depth      int        `json:"depth"`
	Via        *ImpactRef `json:"via,omitempty"`
	Constraint string     `json:"constraint,omitempty"`
}

// Impact is the blast radius of a version, digest or key: the versions
// it names, every version that depends on them transitively, and the
// tenants that used any of them. A caller that is not the operator's admin
// sees only the dependents it may see and its own tenant; the rest is
// counted, never named (HiddenDependents, OtherTenants).
type Impact struct {
	Query            ImpactQuery     `json:"query"`
	Targets          []ImpactVersion `json:"targets"`
	Dependents       []ImpactVersion `json:"dependents"`
	HiddenDependents int             `json:"hiddenDependents"`
	// Tenants are the tenants that used (pulled or installed) a target or
	// a dependent, with the versions each used; TenantsFrom says how the
	// index knows: "usage" (usage events) or "graph" (the tenants that own
	// the versions, before usage is recorded).
	Tenants      []ImpactTenant `json:"tenants"`
	OtherTenants int            `json:"otherTenants"`
	TenantsFrom  string         `json:"tenantsFrom"`
}

// ImpactTenant is a tenant of the blast radius and the versions it used.
type ImpactTenant struct {
	Tenant   string      `json:"tenant"`
	Versions []ImpactRef `json:"versions"`
}

// Impact asks the index for the blast radius of q. It needs a token: the
// operator's admin sees everything, a publisher the impact of its own
// tenant's versions (ErrForbidden for another's, ErrNotFound for what it
// cannot see at all).
func (c *Client) Impact(ctx context.Context, q ImpactQuery) (*Impact, error) {
	v := url.Values{}
	for k, s := range map[string]string{"name": q.Name, "version": q.Version, "digest": q.Digest, "key": q.Key} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out Impact
	if err := c.get(ctx, "/api/v1/impact", v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
