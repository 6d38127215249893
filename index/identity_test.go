package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
)

// pushAs pushes an extension whose descriptor says name@version into the
// repository repo of reg, as an impersonator would, and returns its digest.
// title tells the copies apart (a different digest).
func pushAs(t *testing.T, reg *testenv.Registry, repo, name, version, title string) string {
	t.Helper()
	dir := t.TempDir()
	desc := fmt.Sprintf("apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: %s\n  version: %s\n  title: %s\n"+
		"spec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n", name, version, title)
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(desc), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte(title+"\n"), 0o644)
	ctx := context.Background()
	pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	r, err := artifact.NewRepository(reg.Ref(repo), remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, r, "", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return pkg.Manifest.Digest.String()
}

// identityWorld: one registry, three tenants' sources over it, an
// ingester without a policy, and the API on the same store.
type identityWorld struct {
	reg     *testenv.Registry
	st      store.Store
	in      *index.Ingester
	sources map[string]*index.Source // by tenant
	api     *httptest.Server
	tokens  map[string]string
}

func newIdentityWorld(t *testing.T, publishers ...index.Publisher) *identityWorld {
	reg := startRegistry(t, testenv.DistributionOptions{})
	w := &identityWorld{reg: reg, st: storetest.SQLite(t), sources: map[string]*index.Source{}, tokens: map[string]string{}}
	for i := range publishers {
		for j, g := range publishers[i].Repositories {
			publishers[i].Repositories[j] = strings.ReplaceAll(g, "REGISTRY", reg.Host)
		}
	}
	dir := t.TempDir()
	w.in = &index.Ingester{Store: w.st, Publishers: publishers, Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}
	for _, tenant := range []string{"connectsoft", "evil", "globex"} {
		w.sources[tenant] = &index.Source{Name: tenant, Registry: reg.Host, PlainHTTP: true, Repositories: []string{tenant + "/**"},
			Tenant: tenant, Visibility: store.Public}
		tok, rec, err := index.NewToken(tenant, []string{"reader"})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.st.PutToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		w.tokens[tenant] = tok
	}
	w.api = httptest.NewServer((&index.API{Store: w.st, PublicURL: "https://index.example.com", Publishers: publishers}).Handler())
	t.Cleanup(w.api.Close)
	return w
}

// ingest pushes name@version into repo and ingests it from tenant's source.
func (w *identityWorld) ingest(t *testing.T, tenant, repo, name, version string) (*index.Ingested, string) {
	t.Helper()
	digest := pushAs(t, w.reg, repo, name, version, tenant+" "+repo)
	got, err := w.in.Ingest(context.Background(), w.sources[tenant], repo, digest)
	if err != nil {
		t.Fatalf("ingest %s from %s: %v", name, repo, err)
	}
	return got, digest
}

func (w *identityWorld) get(t *testing.T, tenant, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.api.URL+path, nil)
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[tenant])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (w *identityWorld) alerts(t *testing.T, tenant string) []*store.Alert {
	t.Helper()
	as, err := w.st.Alerts(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// resolved is the repository@digest the index resolves name to for tenant.
func (w *identityWorld) resolved(t *testing.T, tenant, name string) string {
	t.Helper()
	var res struct {
		Selected []struct{ Name, Reference string }
	}
	if code := w.get(t, tenant, "/api/v1/resolve?name="+url.QueryEscape(name)+"&factory=2.5.0", &res); code != 200 || len(res.Selected) != 1 {
		t.Fatalf("tenant %q resolving %s: %d %+v", tenant, name, code, res)
	}
	return res.Selected[0].Reference
}

func isQuarantined(got *index.Ingested) bool {
	return got.Result.Quarantined && !got.Result.Created && got.Result.Alert != nil && got.Result.Alert.Type == store.AlertIdentityMismatch
}

// A repository evil/widget whose descriptor says connectsoft/widget, even
// ingested before the real one, is quarantined: not stored, listed, shown
// or resolved under that name, with an identity-mismatch alert; the real
// connectsoft/widget is listed and resolves, to itself, for every tenant.
func TestIndexRefusesNameFromAnotherNamespace(t *testing.T) {
	w := newIdentityWorld(t)
	evil, _ := w.ingest(t, "evil", "evil/widget", "connectsoft/widget", "1.0.0")
	if !isQuarantined(evil) {
		t.Fatalf("evil/widget claiming connectsoft/widget: %+v", evil.Result)
	}
	if !strings.Contains(evil.Result.Alert.Message, "quarantined") || !strings.Contains(evil.Result.Alert.Message, "publishers:") {
		t.Errorf("the alert does not say what happened and what to do: %q", evil.Result.Alert.Message)
	}
	real, realDigest := w.ingest(t, "connectsoft", "connectsoft/widget", "connectsoft/widget", "1.0.0")
	if !real.Result.Created {
		t.Fatalf("the real connectsoft/widget: %+v", real.Result)
	}
	if _, err := w.st.Version(context.Background(), "evil", "connectsoft/widget", "1.0.0"); err == nil {
		t.Fatal("the impersonation is stored in tenant evil")
	}
	if as := w.alerts(t, "evil"); len(as) != 1 || as[0].Type != store.AlertIdentityMismatch || as[0].Repository != w.reg.Host+"/evil/widget" {
		t.Fatalf("tenant evil's alerts: %+v", as)
	}
	var found searchResult
	w.get(t, "", "/api/v1/extensions?q=widget", &found)
	if found.Total != 1 || found.Items[0].Tenant != "connectsoft" {
		t.Fatalf("search for widget: %+v", found)
	}
	for _, tenant := range []string{"", "evil", "globex", "connectsoft"} {
		if ref := w.resolved(t, tenant, "connectsoft/widget"); ref != w.reg.Host+"/connectsoft/widget@"+realDigest {
			t.Errorf("tenant %q resolves connectsoft/widget to %s", tenant, ref)
		}
		var d struct{ Versions []store.Version }
		w.get(t, tenant, "/api/v1/extensions/connectsoft/widget", &d)
		if len(d.Versions) != 1 || d.Versions[0].Digest != realDigest {
			t.Errorf("tenant %q sees the versions %+v", tenant, d.Versions)
		}
	}
}

// A repository of another tenant whose path does end with the name
// (evil/connectsoft/widget) still cannot take a name that has an owner:
// it is quarantined, and the owner's tenant is told.
func TestIndexRefusesCrossTenantClaimOfAnOwnedName(t *testing.T) {
	w := newIdentityWorld(t)
	_, realDigest := w.ingest(t, "connectsoft", "connectsoft/widget", "connectsoft/widget", "1.0.0")
	claim, _ := w.ingest(t, "evil", "evil/connectsoft/widget", "connectsoft/widget", "2.0.0")
	if !isQuarantined(claim) {
		t.Fatalf("a cross-tenant claim: %+v", claim.Result)
	}
	if strings.Contains(claim.Result.Alert.Message, "connectsoft/widget@"+realDigest) {
		t.Errorf("the claimant's alert names the owner's repository: %q", claim.Result.Alert.Message)
	}
	if as := w.alerts(t, "connectsoft"); len(as) != 1 || as[0].Type != store.AlertIdentityMismatch || !strings.Contains(as[0].Message, "evil/connectsoft/widget") {
		t.Fatalf("the owner's alerts: %+v", as)
	}
	var found searchResult
	w.get(t, "", "/api/v1/extensions?q=widget", &found)
	if found.Total != 1 || found.Items[0].LatestVersion != "1.0.0" {
		t.Fatalf("search shows the claimant's 2.0.0: %+v", found)
	}
	if ref := w.resolved(t, "evil", "connectsoft/widget"); !strings.HasSuffix(ref, "@"+realDigest) {
		t.Fatalf("tenant evil resolves to %s", ref)
	}
}

// Inside one tenant, a second repository publishing the same name@version
// is an identity mismatch, not a moved tag: the first repository owns the
// name, and no misleading tag-moved alert is raised against it.
func TestIndexSecondRepositoryOfOneTenantIsAMismatchNotAMovedTag(t *testing.T) {
	w := newIdentityWorld(t)
	w.ingest(t, "connectsoft", "connectsoft/widget", "connectsoft/widget", "1.0.0")
	second, _ := w.ingest(t, "connectsoft", "connectsoft/old/connectsoft/widget", "connectsoft/widget", "1.0.0")
	if !isQuarantined(second) || second.Result.Moved {
		t.Fatalf("a second repository of the same tenant: %+v", second.Result)
	}
	as := w.alerts(t, "connectsoft")
	if len(as) != 1 || as[0].Type != store.AlertIdentityMismatch || !strings.Contains(as[0].Message, "owned by repository "+w.reg.Host+"/connectsoft/widget") {
		t.Fatalf("alerts: %+v", as)
	}
}

// With a publishers: entry the binding is the config, not the first
// claim: another tenant's repository is quarantined even when it publishes
// the name first, and the bound repository then owns it.
func TestIndexPublisherBindingBeatsFirstClaim(t *testing.T) {
	w := newIdentityWorld(t, index.Publisher{Name: "connectsoft", Tenant: "connectsoft", Repositories: []string{"REGISTRY/connectsoft/**"}})
	first, _ := w.ingest(t, "evil", "evil/connectsoft/gadget", "connectsoft/gadget", "1.0.0")
	if !isQuarantined(first) || !strings.Contains(first.Result.Alert.Message, "another tenant") {
		t.Fatalf("an unbound tenant publishing first: %+v", first.Result)
	}
	real, _ := w.ingest(t, "connectsoft", "connectsoft/tools/gadget-repo", "connectsoft/gadget", "1.0.0")
	if !real.Result.Created {
		t.Fatalf("a bound repository not ending with the name: %+v", real.Result)
	}
	// Bound tenant, unbound repository: a source that maps it to the
	// tenant does not bind it to the namespace.
	w.sources["connectsoft"].Repositories = []string{"**"}
	stray, _ := w.ingest(t, "connectsoft", "elsewhere/connectsoft/gizmo", "connectsoft/gizmo", "1.0.0")
	if !isQuarantined(stray) || !strings.Contains(stray.Result.Alert.Message, "is not one of publisher connectsoft's repositories") {
		t.Fatalf("a repository outside the publisher's globs: %+v", stray.Result)
	}
}
