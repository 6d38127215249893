package artifact

import (
	"fmt"
	"github.com/connectsoft/marketplace/remote"
	"strings"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
)

// OpenLayout opens (or creates) the OCI image layout named by spec, written
// as oras does: PATH, PATH:TAG or PATH@DIGEST. It returns the store and the
// reference part ("" when spec has none).
func OpenLayout(spec string) (*oci.Store, string, error) {
	path, ref := spec, ""
	if i := strings.LastIndex(spec, "@"); i > 0 {
		path, ref = spec[:i], spec[i+1:]
	} else if i := strings.LastIndex(spec, ":"); i > strings.LastIndex(spec, "/") && i > 0 {
		path, ref = spec[:i], spec[i+1:]
	}
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
