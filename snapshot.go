package marketplace

import (
	"context"
	"fmt"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"oras.land/oras-go/v2"
)

// SnapshotOptions say where a signed snapshot (DESIGN §6.5) is and what
// it must be signed by.
type SnapshotOptions struct {
	// Ref names the snapshot artifact: HOST/REPOSITORY:TAG, or with
	// OCILayout an OCI image layout PATH[:TAG|@DIGEST].
	Ref string
	// OCILayout says Ref is an OCI layout, which then serves the
	// extensions too (fully air-gapped: `mkt copy --to-oci-layout` put
	// them there, with their signatures and attestations).
	OCILayout bool
	// Root is the trusted root.json.
	Root []byte
	// CacheDir keeps the metadata this client trusted, per root, so an
	// older snapshot is refused later; "" is snapshot.DefaultCacheDir().
	CacheDir string
}

// OpenSnapshot verifies the snapshot so names with TUF and returns o set
// to resolve and install from it: o.Snapshot holds the verified catalog,
// and with OCILayout o.Remote reads every registry from the layout (no
// network). A snapshot refused by a TUF check matches snapshot.ErrRefused
// and the check's own error (snapshot.ErrRollback, ErrFreeze,
// ErrMixAndMatch, ErrSignature).
func OpenSnapshot(ctx context.Context, so SnapshotOptions, o Options) (Options, error) {
	var src oras.ReadOnlyTarget
	var ref string
	if so.OCILayout {
		store, r, err := artifact.OpenLayoutReadOnly(ctx, so.Ref)
		if err != nil {
			return o, err
		}
		if o.Remote, err = artifact.LayoutOptions(artifact.LayoutPath(so.Ref)); err != nil {
			return o, err
		}
		src, ref = store, r
	} else {
		repo, err := artifact.NewRepository(so.Ref, o.Remote)
		if err != nil {
			return o, err
		}
		src, ref = repo, repo.Reference.Reference
	}
	if ref == "" {
		return o, fmt.Errorf("snapshot %s: give the tag or digest it is under (REF:TAG)", so.Ref)
	}
	s, err := snapshot.Open(ctx, src, ref, snapshot.OpenOptions{Root: so.Root, CacheDir: so.CacheDir, Name: so.Ref})
	if err != nil {
		return o, err
	}
	o.Snapshot = s
	return o, nil
}
