package index_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
)

// A snapshot holds what its scope may see and the index would offer:
// another tenant's private versions, internal ones in a public snapshot,
// quarantined ones and versions the index's policy refused never leak in,
// and a name another tenant also publishes lists the owner's versions only.
func TestSnapshotCatalogKeepsToItsScope(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce"}
	refused := &policy.Decision{Mode: "enforce", Checks: []policy.Check{{Name: "signature", Reason: "unsigned"}}}
	storeExt(t, st, "acme", store.Public, "acme/lib", "1.0.0", ">=2.0.0", "", ok)
	storeExt(t, st, "acme", store.Public, "acme/lib", "1.1.0", ">=2.0.0", "", refused)
	storeExt(t, st, "acme", store.Public, "acme/app", "1.0.0", ">=2.0.0", "  dependencies:\n    - {name: acme/lib, version: ^1.0.0}\n", nil)
	storeExt(t, st, "acme", store.Internal, "acme/tool", "1.0.0", ">=2.0.0", "", ok)
	storeExt(t, st, "globex", store.Private, "globex/secret", "1.0.0", ">=2.0.0", "", ok)
	storeExt(t, st, "initech", store.Public, "acme/lib", "9.9.9", ">=2.0.0", "", ok)
	if _, err := st.UpsertVersion(context.Background(), &store.Version{Tenant: "acme", Name: "acme/new", Version: "1.0.0", Repository: "reg.example/acme/new",
		Digest: "sha256:new", Kind: "Module", Visibility: store.Public, Quarantined: true, IngestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ss := st.(store.SnapshotStore)
	list := func(o index.SnapshotOptions) []string {
		t.Helper()
		c, err := index.SnapshotCatalog(context.Background(), ss, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range c.Versions {
			out = append(out, e.Name+"@"+e.Version)
			if e.Name == "acme/app" && (len(e.Dependencies) != 1 || e.Dependencies[0].Name != "acme/lib" || e.Dependencies[0].Version != "^1.0.0") {
				t.Fatalf("acme/app's dependencies: %+v", e.Dependencies)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		o    index.SnapshotOptions
		want []string
	}{
		{index.SnapshotOptions{}, []string{"acme/app@1.0.0", "acme/lib@1.0.0"}},
		{index.SnapshotOptions{Visibility: store.Internal}, []string{"acme/app@1.0.0", "acme/lib@1.0.0", "acme/tool@1.0.0"}},
		{index.SnapshotOptions{Tenant: "globex"}, []string{"acme/app@1.0.0", "acme/lib@1.0.0", "globex/secret@1.0.0"}},
		{index.SnapshotOptions{Tenant: "initech"}, []string{"acme/app@1.0.0", "acme/lib@9.9.9"}},
	} {
		if got := list(c.o); !slices.Equal(got, c.want) {
			t.Errorf("scope %+v: %v, want %v", c.o, got, c.want)
		}
	}
	if _, err := (index.SnapshotOptions{Visibility: store.Private}).Scope(); err == nil {
		t.Fatal("a private scope without a tenant was accepted")
	}
}
