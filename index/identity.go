package index

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectsoft/marketplace/index/store"
)

// Identity binding (DESIGN §6.1): an extension is listed, resolved and
// installed under its name only when the repository it was found in is
// bound to that name's publisher namespace.
//
// With a publishers: entry for the namespace, the binding is that entry:
// the source's tenant must be the publisher's tenant and the repository
// (registry/repository) must match one of its globs. Without one, the
// default is the safe reading of an unconfigured index: the repository
// path must end with the descriptor's <publisher>/<name> (so evil/widget
// cannot claim connectsoft/widget). Either way one name has one owner
// across the whole index: the first tenant and repository to publish it
// (store.ClaimName). A later claimant from any other repository, in the
// same tenant or another, is quarantined with an identity-mismatch alert,
// not stored with a misleading tag-moved alert.

// findPublisher returns the entry of ps binding namespace ns, if any.
func findPublisher(ps []Publisher, ns string) *Publisher {
	for i := range ps {
		if ps[i].Name == ns {
			return &ps[i]
		}
	}
	return nil
}

// BoundRepositories returns the globs over registry/repository where the
// publisher of name may publish, from its publishers: entry; nil when no
// entry binds its namespace. Resolution hands them to clients, which
// refuse an answer outside them (DESIGN §6.1).
func (a *API) BoundRepositories(name string) []string {
	ns, _, _ := strings.Cut(name, "/")
	if p := findPublisher(a.Publishers, ns); p != nil {
		return p.Repositories
	}
	return nil
}

// bindIdentity checks that v, found in src, is bound to the name its
// descriptor claims. It returns nil when it is, and the quarantine (nothing
// stored, an identity-mismatch alert recorded for the source's tenant and,
// when another tenant owns the name, for that tenant too) when it is not.
func (in *Ingester) bindIdentity(ctx context.Context, src *Source, v *store.Version) (*Ingested, error) {
	ns, repo := v.Publisher(), v.Repository
	var reason string
	var owner *store.NameOwner
	if p := findPublisher(in.Publishers, ns); p != nil {
		switch {
		case p.Tenant != src.Tenant:
			reason = fmt.Sprintf("publisher %s belongs to another tenant than source %s's (%s)", ns, src.Name, src.Tenant)
		case !p.Binds(repo):
			reason = fmt.Sprintf("repository %s is not one of publisher %s's repositories %v", repo, ns, p.Repositories)
		}
	} else if !strings.HasSuffix("/"+repo, "/"+v.Name) {
		reason = fmt.Sprintf("no publishers: entry binds namespace %s, and without one the repository path must end with the name (%s)", ns, v.Name)
	}
	if reason == "" {
		var err error
		if owner, err = in.Store.ClaimName(ctx, v.Name, src.Tenant, repo); err != nil {
			return nil, fmt.Errorf("ingest %s@%s: %w", repo, v.Digest, err)
		}
		switch {
		case owner.Tenant == src.Tenant && owner.Repository == repo:
			return nil, nil
		case owner.Tenant == src.Tenant:
			reason = fmt.Sprintf("%s is owned by repository %s, the first to publish it; one name has one owner", v.Name, owner.Repository)
		default:
			reason = fmt.Sprintf("%s is owned by another tenant's repository, the first to publish it; one name has one owner", v.Name)
		}
	}
	a := &store.Alert{Tenant: src.Tenant, Type: store.AlertIdentityMismatch, Name: v.Name, Version: v.Version, Repository: repo,
		NewDigest: v.Digest, Message: fmt.Sprintf("%s@%s claims the name %s@%s, which is not bound to it: %s. It is quarantined: "+
			"not listed, resolved or installed. Publish it under a name of a namespace bound to this repository, or have the "+
			"operator bind the repository to publisher %s (publishers: in the index config).", repo, v.Digest, v.Name, v.Version, reason, ns)}
	if _, err := in.Store.AddAlert(ctx, a); err != nil {
		return nil, fmt.Errorf("quarantine %s@%s: %w", repo, v.Digest, err)
	}
	if owner != nil && owner.Tenant != src.Tenant {
		// The owner learns that its name was claimed elsewhere.
		o := *a
		o.Tenant, o.Message = owner.Tenant, fmt.Sprintf("%s@%s (tenant %s) claimed your name %s@%s; it was quarantined, "+
			"and your repository %s stays the name's owner.", repo, v.Digest, src.Tenant, v.Name, v.Version, owner.Repository)
		if _, err := in.Store.AddAlert(ctx, &o); err != nil {
			return nil, fmt.Errorf("quarantine %s@%s: %w", repo, v.Digest, err)
		}
	}
	return &Ingested{Version: v, Result: store.UpsertResult{Quarantined: true, Alert: a}}, nil
}
