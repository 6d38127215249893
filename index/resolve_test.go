package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
)

func storeExt(t *testing.T, st store.Store, tenant, vis, name, version, factory, deps string, decision *policy.Decision) {
	y := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: " + name + "\n  version: " + version +
		"\nspec:\n  license: MIT\n  compatibility:\n    factory: \"" + factory + "\"\n" + deps
	ext, err := artifact.ParseExtension(strings.NewReader(y), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := json.Marshal(ext)
	v := &store.Version{Tenant: tenant, Name: name, Version: version, Repository: "reg.example/" + name, Digest: "sha256:" + strings.ReplaceAll(name+version, "/", ""),
		Kind: "Module", License: "MIT", Factory: factory, Visibility: vis, Descriptor: desc, IngestedAt: time.Now()}
	if decision != nil {
		v.Allowed = decision.Allowed
		v.Decision, _ = json.Marshal(decision)
	}
	if _, err := st.UpsertVersion(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}

func TestAPIResolveUsesStoredDecisionsAndTenancy(t *testing.T) {
	w := newAPIWorld(t)
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce", Checks: []policy.Check{{Name: "signature", Passed: true, Reason: "signed"}, {Name: "compatibility", Reason: "no Factory version given"}}}
	unsigned := &policy.Decision{Mode: "enforce", Checks: []policy.Check{{Name: "signature", Reason: "unsigned"}}}
	storeExt(t, w.st, "acme", store.Public, "acme/lib", "1.0.0", ">=2.0.0 <3.0.0", "", ok)
	storeExt(t, w.st, "acme", store.Public, "acme/lib", "1.1.0", ">=2.0.0 <3.0.0", "", unsigned)
	storeExt(t, w.st, "acme", store.Public, "acme/lib", "1.2.0", ">=3.0.0", "", ok)
	storeExt(t, w.st, "acme", store.Public, "acme/app", "1.0.0", ">=2.0.0", "  dependencies:\n    - {name: acme/lib, version: ^1.0.0}\n", ok)
	storeExt(t, w.st, "globex", store.Private, "globex/app", "1.0.0", ">=2.0.0", "", ok)

	c := &client.Client{URL: w.srv.URL}
	res, err := c.Resolve(context.Background(), []resolve.Requirement{{Name: "acme/app"}}, "2.4.0", true)
	if err != nil {
		t.Fatal(err)
	}
	lib := res.Find("acme/lib")
	if lib == nil || lib.Version != "1.0.0" || res.Find("acme/app") == nil || !strings.HasPrefix(lib.Reference, "reg.example/acme/lib@sha256:") {
		t.Fatalf("resolution %+v", res.Selected)
	}
	reasons := map[string]string{}
	for _, p := range lib.PassedOver {
		reasons[p.Version] = strings.Join(p.Reasons, "; ")
	}
	if !strings.Contains(reasons["1.1.0"], "unsigned") || !strings.Contains(reasons["1.2.0"], "incompatible") {
		t.Fatalf("passed over: %+v", reasons)
	}
	// Another tenant's private extension resolves for it, and is not found for anyone else.
	if _, err := (&client.Client{URL: w.srv.URL, Token: w.tokens["globex"]}).Resolve(context.Background(), []resolve.Requirement{{Name: "globex/app"}}, "2.4.0", false); err != nil {
		t.Fatalf("globex resolving its own: %v", err)
	}
	for _, who := range []string{"", "acme"} {
		_, err := (&client.Client{URL: w.srv.URL, Token: w.tokens[who]}).Resolve(context.Background(), []resolve.Requirement{{Name: "globex/app"}}, "2.4.0", false)
		if err == nil || !strings.Contains(err.Error(), "no versions published") {
			t.Fatalf("%q resolving globex's private extension: %v", who, err)
		}
	}
	if code := w.get(t, "", "/api/v1/resolve", nil); code != http.StatusBadRequest {
		t.Fatalf("resolve without a name: %d", code)
	}
}

func TestAPIResolveLeavesOutTheVersionsTheClientExcluded(t *testing.T) {
	w := newAPIWorld(t)
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce"}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		storeExt(t, w.st, "acme", store.Public, "acme/lib", v, ">=2.0.0 <3.0.0", "", ok)
	}
	c := &client.Client{URL: w.srv.URL}
	ask := func(exclude ...string) (*resolve.Resolution, error) {
		return c.ResolveQuery(context.Background(), client.ResolveQuery{Requirements: []resolve.Requirement{{Name: "acme/lib"}}, Factory: "2.4.0", Exclude: exclude})
	}
	for _, tc := range []struct {
		exclude []string
		want    string
	}{
		{nil, "1.2.0"},
		{[]string{"acme/lib@1.2.0"}, "1.1.0"},
		{[]string{"acme/lib@1.2.0", "acme/lib@1.1.0", "other/name@1.0.0"}, "1.0.0"},
	} {
		res, err := ask(tc.exclude...)
		if err != nil || res.Find("acme/lib") == nil || res.Find("acme/lib").Version != tc.want {
			t.Fatalf("excluding %v: %v %+v, want %s", tc.exclude, err, res, tc.want)
		}
	}
	if _, err := ask("acme/lib@1.2.0", "acme/lib@1.1.0", "acme/lib@1.0.0"); !errors.Is(err, resolve.ErrUnresolvable) || !strings.Contains(err.Error(), "besides the 3 versions the client excluded") {
		t.Fatalf("every version excluded: %v", err)
	}
	// The exclusion lasts one request: the next one sees every version.
	if res, err := ask(); err != nil || res.Find("acme/lib").Version != "1.2.0" {
		t.Fatalf("after excluding: %v %+v", err, res)
	}
	if code := w.get(t, "", "/api/v1/resolve?name=acme/lib&exclude=acme-lib", nil); code != http.StatusBadRequest {
		t.Fatalf("exclude without @VERSION: %d, want 400", code)
	}
}

func TestAPIResolveAnswerCarriesThePublishersBoundRepositories(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce"}
	storeExt(t, st, "acme", store.Public, "acme/lib", "1.0.0", ">=2.0.0 <3.0.0", "", ok)
	storeExt(t, st, "globex", store.Public, "globex/app", "1.0.0", ">=2.0.0 <3.0.0", "", ok)
	api := &index.API{Store: st, Publishers: []index.Publisher{{Name: "acme", Tenant: "acme", Repositories: []string{"reg.example/acme/**"}}}}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	res, err := (&client.Client{URL: srv.URL}).Resolve(context.Background(), []resolve.Requirement{{Name: "acme/lib"}, {Name: "globex/app"}}, "2.4.0", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Find("acme/lib").BoundRepositories; len(got) != 1 || got[0] != "reg.example/acme/**" {
		t.Fatalf("acme/lib's bound repositories: %v", got)
	}
	if got := res.Find("globex/app").BoundRepositories; got != nil {
		t.Fatalf("globex has no publishers: entry, yet the answer binds it to %v", got)
	}
}

// TestClientErrorsMatchTheServersErrorTypes asks the index for what it
// refuses in each way and expects the client's error to match the
// sentinel of that refusal, with the code the server chose by type.
func TestClientErrorsMatchTheServersErrorTypes(t *testing.T) {
	w := newAPIWorld(t)
	ok := &policy.Decision{Allowed: true, Passed: true, Mode: "enforce"}
	storeExt(t, w.st, "acme", store.Public, "acme/lib", "1.0.0", ">=2.0.0 <3.0.0", "", ok)
	ctx := context.Background()
	anon := &client.Client{URL: w.srv.URL}
	resolveName := func(c *client.Client, name string) error {
		_, err := c.Resolve(ctx, []resolve.Requirement{{Name: name}}, "2.4.0", false)
		return err
	}
	for _, tc := range []struct {
		what   string
		err    error
		status int
		code   string
		is     []error
		isNot  []error
	}{
		{"a name nobody published", resolveName(anon, "acme/none"), http.StatusNotFound, client.CodeNotPublished,
			[]error{resolve.ErrNotPublished, resolve.ErrUnresolvable, client.ErrNotFound}, []error{client.ErrBadRequest}},
		{"a constraint no version satisfies", resolveName(anon, "acme/lib@^9.0.0"), http.StatusUnprocessableEntity, client.CodeUnresolvable,
			[]error{resolve.ErrUnresolvable}, []error{resolve.ErrNotPublished, client.ErrNotFound}},
		{"an unknown token", resolveName(&client.Client{URL: w.srv.URL, Token: "mkt_unknown"}, "acme/lib"), http.StatusUnauthorized, client.CodeUnauthorized,
			[]error{client.ErrUnauthorized}, []error{resolve.ErrUnresolvable}},
		{"a page out of range", func() error { _, err := anon.Search(ctx, client.SearchQuery{Page: 2_000_000}); return err }(),
			http.StatusBadRequest, client.CodeBadRequest, []error{client.ErrBadRequest}, []error{client.ErrNotFound}},
	} {
		var ae *client.APIError
		if !errors.As(tc.err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("%s: %v (%+v), want status %d code %s", tc.what, tc.err, ae, tc.status, tc.code)
			continue
		}
		for _, target := range tc.is {
			if !errors.Is(tc.err, target) {
				t.Errorf("%s: %v does not match %v", tc.what, tc.err, target)
			}
		}
		for _, target := range tc.isNot {
			if errors.Is(tc.err, target) {
				t.Errorf("%s: %v matches %v", tc.what, tc.err, target)
			}
		}
	}
	page, err := anon.Search(ctx, client.SearchQuery{Text: "lib"})
	if err != nil || page.Total != 1 || page.Items[0].Name != "acme/lib" || page.Items[0].Latest != "1.0.0" {
		t.Fatalf("search through the client: %v %+v", err, page)
	}
}
