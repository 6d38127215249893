package marketplace_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// reg is a plain registry; authReg needs TLS (trusted through its CA
// file) and basic-auth credentials.
var reg, authReg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.Distribution(&reg, testenv.DistributionOptions{}),
		testenv.Distribution(&authReg, testenv.DistributionOptions{TLS: true, Username: "factory", Password: "s3cret-pw"}),
	))
}

const approve = `{"reviewer":"sec","result":"approved","level":"internal","time":"2026-05-01T00:00:00Z"}`

// scenario publishes acme/app → acme/lib, both signed and reviewed, under
// prefix, and writes a policy that requires exactly that.
func scenario(t *testing.T, prefix string) (*fixture.Publisher, map[string]string, string) {
	return scenarioOn(t, reg, prefix)
}

// scenarioOn is scenario on registry r.
func scenarioOn(t *testing.T, r *testenv.Registry, prefix string) (*fixture.Publisher, map[string]string, string) {
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, r)
	signer, _, _ := fixture.KeyPair(t, dir, "pub")
	rev, _, _ := fixture.KeyPair(t, dir, "rev")
	refs := map[string]string{}
	for _, e := range []fixture.Ext{
		{Name: "acme/lib", Version: "1.0.0"},
		{Name: "acme/lib", Version: "1.1.0"},
		{Name: "acme/app", Version: "2.0.0", Deps: map[string]string{"acme/lib": "^1.0.0"}},
	} {
		ref := pub.Publish(prefix, e)
		pub.Sign(ref, signer)
		pub.Attest(ref, rev, "review", approve)
		refs[e.Name+"@"+e.Version] = ref
	}
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
  - {name: review, keys: [rev.pub]}
rules:
  - name: all
    match: {repositories: ["%s/%s/**"]}
    signatures: {trustRoots: [publishers]}
    attestations:
      - {type: review, trustRoots: [review], condition: 'predicate.result == "approved"'}
    compatibility: required
`, r.Host, prefix)), 0o644)
	return pub, refs, pol
}

func options(t *testing.T, pub *fixture.Publisher, prefix, pol string) marketplace.Options {
	p, err := policy.Load(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return marketplace.Options{Registry: reg.Host + "/" + prefix, Remote: pub.Remote, Policy: p, FactoryVersion: "2.4.0",
		Dir: filepath.Join(dir, "extensions"), Lockfile: filepath.Join(dir, "extensions.lock")}
}

func TestInstallWritesTreesAndLockfileThenLockedReverifies(t *testing.T) {
	ctx := context.Background()
	pub, refs, pol := scenario(t, "inst")
	o := options(t, pub, "inst", pol)
	res, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/app"}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lock.Extensions) != 2 {
		t.Fatalf("lock %+v", res.Lock)
	}
	for _, p := range []string{"acme/app/extension.yaml", "acme/lib/extension.yaml"} {
		if _, err := os.Stat(filepath.Join(o.Dir, p)); err != nil {
			t.Fatalf("installed tree lacks %s: %v", p, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(o.Dir, "acme/lib/README.md"))
	if !strings.Contains(string(b), "acme/lib 1.1.0") {
		t.Fatalf("installed lib is not the newest allowed: %s", b)
	}
	lock, err := marketplace.ReadLock(o.Lockfile)
	if err != nil {
		t.Fatal(err)
	}
	wantLib := refs["acme/lib@1.1.0"]
	for _, e := range lock.Extensions {
		if e.Name == "acme/lib" && (e.Version != "1.1.0" || e.Reference != wantLib || !strings.HasSuffix(wantLib, e.Digest)) {
			t.Fatalf("lock entry %+v, want %s", e, wantLib)
		}
	}
	before, _ := os.ReadFile(o.Lockfile)

	// --locked installs the same digests again and leaves the lockfile as it was.
	o.Locked = true
	os.RemoveAll(o.Dir)
	if _, err := marketplace.Install(ctx, nil, o); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(o.Lockfile)
	if string(before) != string(after) {
		t.Fatal("--locked rewrote the lockfile")
	}

	// A review revoked after locking refuses the locked install.
	revDir := filepath.Dir(pol)
	revSigner, _, _ := loadSigner(t, filepath.Join(revDir, "rev.key"))
	pub.Attest(wantLib, revSigner, "review", `{"reviewer":"sec","result":"revoked","level":"internal","notes":"CVE","time":"2026-07-01T00:00:00Z"}`)
	os.RemoveAll(o.Dir)
	_, err = marketplace.Install(ctx, nil, o)
	if err == nil || !strings.Contains(err.Error(), "no longer allowed") || !strings.Contains(err.Error(), "result=revoked") {
		t.Fatalf("locked install of a revoked digest: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(o.Dir, "acme")); !os.IsNotExist(serr) {
		t.Fatal("refused locked install left files")
	}
	// Unlocked, resolution now falls back to 1.0.0.
	o.Locked = false
	if _, err = marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/app"}}, o); err != nil {
		t.Fatal(err)
	}
	var lockNow marketplace.Lock
	b, _ = os.ReadFile(o.Lockfile)
	json.Unmarshal(b, &lockNow)
	for _, e := range lockNow.Extensions {
		if e.Name == "acme/lib" && e.Version != "1.0.0" {
			t.Fatalf("after the revocation lib resolved to %s", e.Version)
		}
	}
}

func TestInstallIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	pub, _, pol := scenario(t, "aon")
	dir := filepath.Dir(pol)
	signer, _, _ := loadSigner(t, filepath.Join(dir, "pub.key"))
	rev, _, _ := loadSigner(t, filepath.Join(dir, "rev.key"))
	for _, e := range []fixture.Ext{
		{Name: "acme/big", Version: "1.0.0", Files: map[string]string{"data.bin": strings.Repeat("x", 2<<20)}},
		{Name: "acme/suite", Version: "1.0.0", Deps: map[string]string{"acme/lib": "^1.0.0", "acme/big": "^1.0.0"}},
	} {
		ref := pub.Publish("aon", e)
		pub.Sign(ref, signer)
		pub.Attest(ref, rev, "review", approve)
	}
	o := options(t, pub, "aon", pol)
	// Something already installed stays untouched by a failed install.
	os.MkdirAll(filepath.Join(o.Dir, "acme", "keep"), 0o755)
	os.WriteFile(filepath.Join(o.Dir, "acme", "keep", "mine.txt"), []byte("mine"), 0o644)
	// suite and lib unpack; big is over the size limit.
	o.Limits.MaxTotalSize = 1 << 20
	_, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/suite"}}, o)
	if err == nil || !strings.Contains(err.Error(), "acme/big@1.0.0") || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("install with one extension over the limits: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(o.Dir, "acme"))
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Fatalf("failed install changed the target: %v", entries)
	}
	if all, _ := os.ReadDir(o.Dir); len(all) != 1 {
		t.Fatalf("failed install left %v in the target", all)
	}
	// Into a directory that did not exist, a failed install leaves none.
	fresh := o
	fresh.Dir = filepath.Join(t.TempDir(), "new", "extensions")
	if _, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/suite"}}, fresh); err == nil {
		t.Fatal("install over the limits succeeded")
	}
	if _, err := os.Stat(filepath.Dir(fresh.Dir)); !os.IsNotExist(err) {
		t.Fatalf("failed install left the directories it created: %v", err)
	}
	if _, err := os.Stat(o.Lockfile); !os.IsNotExist(err) {
		t.Fatal("failed install wrote a lockfile")
	}
	// With room for it, the same install succeeds.
	o.Limits.MaxTotalSize = 0
	if _, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/suite"}}, o); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(o.Dir, "acme")); len(entries) != 4 {
		t.Fatalf("installed %v", entries)
	}
}

func TestVerifyGivesThePolicyDecision(t *testing.T) {
	pub, refs, pol := scenario(t, "ver")
	p, err := policy.Load(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	d, err := marketplace.Verify(context.Background(), refs["acme/lib@1.0.0"], p, "2.4.0", pub.Remote)
	if err != nil || !d.Allowed {
		t.Fatalf("verify: %+v %v", d, err)
	}
	d, err = marketplace.Verify(context.Background(), refs["acme/lib@1.0.0"], p, "3.0.0", pub.Remote)
	if err != nil || d.Allowed || !strings.Contains(d.Text(), "incompatible") {
		t.Fatalf("verify for Factory 3: %+v %v", d, err)
	}
}

// A Go API caller's credentials reach every read: the artifact's manifest
// and layers (oras-go) and its signatures and attestations
// (go-containerregistry), on a TLS registry that refuses anonymous reads.
// Before, the signature reads took credentials from the docker config only,
// found none, and failed with 401.
func TestVerifyAndInstallSendTheCallersCredentialsToSignatureReads(t *testing.T) {
	ctx := context.Background()
	_, refs, pol := scenarioOn(t, authReg, "creds")
	p, err := policy.Load(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	// No docker config: the credential comes from the caller alone.
	ro := remote.Options{CAFile: authReg.CAFile, RegistryConfig: filepath.Join(t.TempDir(), "config.json"),
		Credential: auth.StaticCredential(authReg.Host, auth.Credential{Username: authReg.Username, Password: authReg.Password})}
	d, err := marketplace.Verify(ctx, refs["acme/lib@1.1.0"], p, "2.4.0", ro)
	if err != nil || !d.Allowed {
		t.Fatalf("verify with the caller's credentials: %+v %v", d, err)
	}
	dir := t.TempDir()
	o := marketplace.Options{Registry: authReg.Host + "/creds", Remote: ro, Policy: p, FactoryVersion: "2.4.0",
		Dir: filepath.Join(dir, "extensions"), Lockfile: filepath.Join(dir, "extensions.lock")}
	res, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/app"}}, o)
	if err != nil {
		t.Fatalf("install with the caller's credentials: %v", err)
	}
	if len(res.Extensions) != 2 {
		t.Fatalf("installed %d extensions, want 2", len(res.Extensions))
	}
	// The lockfile's install reads the same evidence again.
	o.Locked = true
	if _, err := marketplace.Install(ctx, nil, o); err != nil {
		t.Fatalf("locked install with the caller's credentials: %v", err)
	}
	// And without them the registry refuses: the test depends on them.
	ro.Credential = nil
	if _, err := marketplace.Verify(ctx, refs["acme/lib@1.1.0"], p, "2.4.0", ro); err == nil {
		t.Fatal("verify without credentials succeeded: the registry does not require them")
	}
}
