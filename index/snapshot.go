package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// SnapshotOptions say which catalog a signed snapshot holds and how it is
// signed (DESIGN §6.5).
type SnapshotOptions struct {
	// Visibility is the scope when Tenant is empty: "public" (default),
	// the versions anyone may see, or "internal", public and internal
	// ones (what the operator's own Factory sees of every tenant).
	Visibility string
	// Tenant, when set, is the scope instead: what that tenant sees (its
	// own versions of any visibility, and public ones).
	Tenant string
	Signer *snapshot.Signer
	Expiry snapshot.Expiry
	// Now is when the snapshot is written (zero: time.Now()).
	Now time.Time
}

// Scope names the snapshot's scope: the key of its writer state and the
// catalog's scope field.
func (o SnapshotOptions) Scope() (string, error) {
	switch {
	case o.Tenant != "":
		return "tenant:" + o.Tenant, nil
	case o.Visibility == "" || o.Visibility == store.Public:
		return store.Public, nil
	case o.Visibility == store.Internal:
		return store.Internal, nil
	}
	return "", fmt.Errorf("visibility %q: want public or internal (or --tenant T for what one tenant sees)", o.Visibility)
}

// canSee is the scope's visibility rule, the index's own (catalog.Viewer)
// for a tenant scope.
func (o SnapshotOptions) canSee(v *store.Version) bool {
	switch {
	case o.Tenant != "":
		return (&catalog.Viewer{Tenant: o.Tenant}).CanSee(v)
	case v.Quarantined: // not past its stage's policy: its tenant's alone
		return false
	case o.Visibility == store.Internal:
		return v.Visibility == store.Public || v.Visibility == store.Internal
	}
	return v.Visibility == store.Public
}

// WrittenSnapshot is what WriteSnapshot pushed.
type WrittenSnapshot struct {
	Scope       string             `json:"scope"`
	Version     int64              `json:"version"`
	Versions    int                `json:"versions"`
	Descriptor  ocispec.Descriptor `json:"-"`
	RootVersion int64              `json:"rootVersion"`
	// Root is the newest root.json: what clients pin (--snapshot-root).
	Root []byte `json:"-"`
	// Expires says when each role's metadata expires.
	Expires map[string]time.Time `json:"expires"`
}

// SnapshotCatalog lists what the scope may see and the index would offer
// for resolution: for each name the versions of the tenant the index's
// lookup picks (the scope's own tenant, else the first with visible
// versions), but those its policy refused at ingest, with their
// dependencies from the stored descriptor.
func SnapshotCatalog(ctx context.Context, st store.SnapshotStore, o SnapshotOptions) (*snapshot.Catalog, error) {
	scope, err := o.Scope()
	if err != nil {
		return nil, err
	}
	vs, err := st.SnapshotVersions(ctx)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	cat := &snapshot.Catalog{APIVersion: snapshot.CatalogAPIVersion, Kind: snapshot.CatalogKind, Scope: scope, Created: now.UTC().Truncate(time.Second)}
	// vs is ordered by name, then tenant.
	for i := 0; i < len(vs); {
		j := i
		for j < len(vs) && vs[j].Name == vs[i].Name {
			j++
		}
		chosen := ""
		for _, v := range vs[i:j] {
			if !o.canSee(v.Version) {
				continue
			}
			if chosen == "" || v.Tenant == o.Tenant && o.Tenant != "" {
				chosen = v.Tenant
			}
		}
		for _, v := range vs[i:j] {
			if v.Tenant != chosen || v.Decided && !v.Allowed || !o.canSee(v.Version) {
				continue
			}
			e, err := entryOf(v.Version)
			if err != nil {
				return nil, err
			}
			cat.Versions = append(cat.Versions, e)
		}
		i = j
	}
	return cat, nil
}

func entryOf(v *store.Version) (snapshot.Entry, error) {
	var d struct {
		Spec struct {
			Dependencies []artifact.Dependency `json:"dependencies"`
		} `json:"spec"`
	}
	if len(v.Descriptor) > 0 {
		if err := json.Unmarshal(v.Descriptor, &d); err != nil {
			return snapshot.Entry{}, fmt.Errorf("stored descriptor of %s@%s: %w", v.Name, v.Version, err)
		}
	}
	return snapshot.Entry{Name: v.Name, Version: v.Version, Repository: v.Repository, Digest: v.Digest,
		Kind: v.Kind, Factory: v.Factory, Dependencies: d.Spec.Dependencies}, nil
}

// ErrNoSnapshotStore matches a store that cannot keep snapshot state.
var ErrNoSnapshotStore = errors.New("this store cannot write snapshots")

// WriteSnapshot writes the scope's next signed snapshot and pushes it to
// dst under tag. The scope's version is taken in the store before the
// push (over the version read, so two writers never publish the same
// version); a failed push leaves a gap, which clients accept.
func WriteSnapshot(ctx context.Context, st store.Store, o SnapshotOptions, dst oras.Target, tag string) (*WrittenSnapshot, error) {
	ss, ok := st.(store.SnapshotStore)
	if !ok {
		return nil, ErrNoSnapshotStore
	}
	scope, err := o.Scope()
	if err != nil {
		return nil, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	cat, err := SnapshotCatalog(ctx, ss, o)
	if err != nil {
		return nil, err
	}
	var prev snapshot.State
	prevVersion, raw, err := ss.SnapshotState(ctx, scope)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(raw, &prev); err != nil {
			return nil, fmt.Errorf("the stored snapshot state of %s: %w", scope, err)
		}
		if prev.Version != prevVersion {
			return nil, fmt.Errorf("the stored snapshot state of %s says version %d, its row %d", scope, prev.Version, prevVersion)
		}
	}
	files, next, err := snapshot.Build(snapshot.BuildOptions{Signer: o.Signer, Catalog: cat, State: prev, Now: o.Now, Expiry: o.Expiry})
	if err != nil {
		return nil, err
	}
	state, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := ss.PutSnapshotState(ctx, scope, prevVersion, next.Version, state); err != nil {
		return nil, fmt.Errorf("snapshot %s version %d: %w (run it again)", scope, next.Version, err)
	}
	desc, err := snapshot.Push(ctx, dst, tag, files, scope, next.Version, o.Now)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s version %d: %w", scope, next.Version, err)
	}
	exp, at := o.Expiry.WithDefaults(), o.Now.UTC().Truncate(time.Second)
	return &WrittenSnapshot{Scope: scope, Version: next.Version, Versions: len(cat.Versions), Descriptor: desc,
		RootVersion: int64(len(next.Roots)), Root: slices.Clone(next.Roots[len(next.Roots)-1]),
		Expires: map[string]time.Time{"targets": at.Add(exp.Targets), "snapshot": at.Add(exp.Snapshot), "timestamp": at.Add(exp.Timestamp)}}, nil
}
