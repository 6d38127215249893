package artifact

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/connectsoft/marketplace/remote"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
)

// OpenLayout opens (or creates) the OCI image layout named by spec, written
// as oras does: PATH, PATH:TAG or PATH@DIGEST. It returns the store and the
// reference part ("" when spec has none).
func OpenLayout(spec string) (*oci.Store, string, error) {
	path, ref := splitLayoutSpec(spec)
	store, err := oci.New(path)
	if err != nil {
		return nil, "", fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	return store, ref, nil
}

// OpenTarget opens what a copy source or destination names: an OCI image
// layout (PATH[:TAG|@DIGEST]) when layout is true, else a registry
// repository (HOST/REPO[:TAG|@DIGEST]). It returns the target and the
// reference part of spec ("" when there is none).
func OpenTarget(spec string, layout bool, o remote.Options) (oras.GraphTarget, string, error) {
	if layout {
		return OpenLayout(spec)
	}
	r, err := NewRepository(spec, o)
	if err != nil {
		return nil, "", err
	}
	return r, r.Reference.Reference, nil
}

// OpenLayoutReadOnly opens an existing OCI image layout for reading only
// (nothing is created or written), spec as in OpenLayout.
func OpenLayoutReadOnly(ctx context.Context, spec string) (*oci.ReadOnlyStore, string, error) {
	path, ref := splitLayoutSpec(spec)
	if _, err := os.Stat(filepath.Join(path, "index.json")); err != nil {
		return nil, "", fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	store, err := oci.NewFromFS(ctx, os.DirFS(path))
	if err != nil {
		return nil, "", fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	return store, ref, nil
}

// LayoutPath is the directory part of an OCI layout spec PATH[:TAG|@DIGEST].
func LayoutPath(spec string) string { p, _ := splitLayoutSpec(spec); return p }

func splitLayoutSpec(spec string) (path, ref string) {
	path = spec
	if i := strings.LastIndex(spec, "@"); i > 0 {
		path, ref = spec[:i], spec[i+1:]
	} else if i := strings.LastIndex(spec, ":"); i > strings.LastIndex(spec, "/") && i > 0 {
		path, ref = spec[:i], spec[i+1:]
	}
	return path, ref
}
