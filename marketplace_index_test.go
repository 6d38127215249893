package marketplace_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// indexScenario publishes, under prefix, acme/lib 1.0.0 (MIT), 1.1.0
// (GPL-3.0-only) and 1.2.0 (MIT, then yanked by its publisher), and
// nopol/thing 0.1.0, all signed; a real index (no policy of its own: it
// offers the newest) ingests them all. The local policy wants the
// publisher's signature and MIT: 1.2.0 is refused as yanked, 1.1.0 for
// its licence, so 1.0.0 is the one a client may install.
type indexScenario struct {
	pub  *fixture.Publisher
	idx  *fixture.Index
	refs map[string]string // name@version → repo@digest
	pol  string
}

func newIndexScenario(t *testing.T, prefix string) *indexScenario {
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	signer, _, _ := fixture.KeyPair(t, dir, "pub")
	sc := &indexScenario{pub: pub, idx: fixture.NewIndex(t, reg, pub.Remote), refs: map[string]string{}}
	for _, e := range []fixture.Ext{
		{Name: "acme/lib", Version: "1.0.0"},
		{Name: "acme/lib", Version: "1.1.0", License: "GPL-3.0-only"},
		{Name: "acme/lib", Version: "1.2.0"},
		{Name: "nopol/thing", Version: "0.1.0"},
	} {
		ref := pub.Publish(prefix, e)
		pub.Sign(ref, signer)
		sc.refs[e.Name+"@"+e.Version] = ref
	}
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	pub.Attest(sc.refs["acme/lib@1.2.0"], signer, "lifecycle", `{"status":"yanked","reason":"CVE-2026-0001","time":"`+at+`"}`)
	for _, ref := range sc.refs {
		sc.idx.Ingest(ref)
	}
	sc.pol = filepath.Join(dir, "policy.yaml")
	os.WriteFile(sc.pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: all
    match: {repositories: ["%s/%s/**"]}
    signatures: {trustRoots: [publishers]}
    licenses: {allow: [MIT]}
`, reg.Host, prefix)), 0o644)
	return sc
}

func (sc *indexScenario) options(t *testing.T, url string) marketplace.Options {
	p, err := policy.Load(context.Background(), sc.pol)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return marketplace.Options{Index: &client.Client{URL: url}, Remote: sc.pub.Remote, Policy: p, FactoryVersion: "2.4.0",
		Dir: filepath.Join(dir, "extensions"), Lockfile: filepath.Join(dir, "extensions.lock")}
}

func passedOver(s *resolve.Selected) map[string]resolve.PassedOver {
	out := map[string]resolve.PassedOver{}
	for _, p := range s.PassedOver {
		out[p.Version] = p
	}
	return out
}

func TestInstallThroughIndexRefusesYankedAndPolicyDeniedChoicesAndTakesTheNextCandidate(t *testing.T) {
	ctx := context.Background()
	sc := newIndexScenario(t, "idxnext")
	o := sc.options(t, sc.idx.URL)

	// The index alone offers the newest, 1.2.0: it has no policy.
	plain, err := (&client.Client{URL: sc.idx.URL}).Resolve(ctx, []resolve.Requirement{{Name: "acme/lib"}}, "2.4.0", false)
	if err != nil || plain.Find("acme/lib").Version != "1.2.0" {
		t.Fatalf("the index's own choice: %v %+v", err, plain)
	}
	res, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/lib"}}, o)
	if err != nil {
		t.Fatal(err)
	}
	lib := res.Lock.Extensions[0]
	if len(res.Lock.Extensions) != 1 || lib.Version != "1.0.0" || lib.Reference != sc.refs["acme/lib@1.0.0"] {
		t.Fatalf("installed %+v, want acme/lib 1.0.0 at %s", res.Lock.Extensions, sc.refs["acme/lib@1.0.0"])
	}
	b, _ := os.ReadFile(filepath.Join(o.Dir, "acme/lib/README.md"))
	if !strings.Contains(string(b), "acme/lib 1.0.0") {
		t.Fatalf("installed tree is not 1.0.0: %q", b)
	}
	why := passedOver(res.Extensions[0])
	if p := why["1.2.0"]; !p.RefusedLocally || !strings.Contains(strings.Join(p.Reasons, ";"), "yanked: CVE-2026-0001") {
		t.Fatalf("1.2.0 passed over for %+v, want the yank, refused locally", p)
	}
	if p := why["1.1.0"]; !p.RefusedLocally || !strings.Contains(strings.Join(p.Reasons, ";"), "GPL-3.0-only") {
		t.Fatalf("1.1.0 passed over for %+v, want its licence, refused locally", p)
	}
	if res.Extensions[0].PassedOver[0].Version != "1.2.0" {
		t.Fatalf("passed over not newest first: %+v", res.Extensions[0].PassedOver)
	}

	// Resolve through the index gives the same choice and explanation.
	r, err := marketplace.Resolve(ctx, []resolve.Requirement{{Name: "acme/lib"}}, o)
	if err != nil || r.Find("acme/lib").Version != "1.0.0" || len(r.Find("acme/lib").PassedOver) != 2 {
		t.Fatalf("resolve through the index: %v %+v", err, r)
	}

	// Nothing acceptable left in range: the error lists what was refused.
	_, err = marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/lib", Constraint: ">=1.1.0"}}, o)
	if !errors.Is(err, resolve.ErrUnresolvable) || !strings.Contains(err.Error(), "acme/lib@1.2.0 (lifecycle: yanked") || !strings.Contains(err.Error(), "acme/lib@1.1.0 (license") {
		t.Fatalf("install with only refused versions in range: %v", err)
	}
}

func TestInstallThroughIndexInstallsAYankedVersionOnlyWhenTheUserPinnedIt(t *testing.T) {
	ctx := context.Background()
	sc := newIndexScenario(t, "idxpin")
	o := sc.options(t, sc.idx.URL)
	yanked := sc.refs["acme/lib@1.2.0"]
	// Resolution never takes the index's repo@digest as a pin...
	if r, err := marketplace.Resolve(ctx, []resolve.Requirement{{Name: "acme/lib", Constraint: "1.2.0"}}, o); err == nil {
		t.Fatalf("resolved the yanked 1.2.0 the index chose: %+v", r.Selected[0])
	}
	// ...a lockfile the user wrote is one: --locked installs it.
	lock := marketplace.Lock{LockfileVersion: 1, Extensions: []marketplace.LockEntry{{Name: "acme/lib", Version: "1.2.0", Reference: yanked, Digest: yanked[strings.Index(yanked, "@")+1:]}}}
	b, _ := json.Marshal(lock)
	os.WriteFile(o.Lockfile, b, 0o644)
	o.Locked = true
	res, err := marketplace.Install(ctx, nil, o)
	if err != nil {
		t.Fatalf("locked install of a pinned yanked version: %v", err)
	}
	if d := res.Extensions[0].Decision; d == nil || !strings.Contains(strings.Join(checkReasons(d), ";"), "pinned") {
		t.Fatalf("pinned yanked install's decision: %+v", d)
	}
}

func checkReasons(d *policy.Decision) []string {
	var out []string
	for _, c := range d.Checks {
		out = append(out, c.Name+": "+c.Reason)
	}
	return out
}

func TestInstallThroughIndexRefusesAnAnswerThatIsNotWhatWasAsked(t *testing.T) {
	ctx := context.Background()
	sc := newIndexScenario(t, "idxlie")
	thing := sc.refs["nopol/thing@0.1.0"]
	repo, digest, _ := strings.Cut(thing, "@")
	// The index says acme/lib, but points at nopol/thing's digest: signed by
	// the same trusted key and under the same rule, so only the name check
	// catches it.
	url := fixture.LyingIndex(t, sc.idx.Handler, func(s map[string]any) {
		if s["name"] == "acme/lib" {
			s["repository"], s["digest"], s["reference"] = repo, digest, thing
		}
	})
	o := sc.options(t, url)
	_, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/lib"}}, o)
	want := "the index said acme/lib@1.2.0 is " + thing + ", but that artifact is nopol/thing@0.1.0"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("install through an index that swaps the artifact: %v\nwant it to say %q", err, want)
	}
	if _, serr := os.Stat(filepath.Join(o.Dir, "nopol")); !os.IsNotExist(serr) {
		t.Fatal("the swapped artifact was installed")
	}
	if _, serr := os.Stat(o.Lockfile); !os.IsNotExist(serr) {
		t.Fatal("a lockfile was written for a refused answer")
	}

	// The index answers another name than the one asked.
	url = fixture.LyingIndex(t, sc.idx.Handler, func(s map[string]any) {
		if s["name"] == "acme/lib" {
			s["name"], s["version"], s["repository"], s["digest"], s["reference"] = "nopol/thing", "0.1.0", repo, digest, thing
		}
	})
	_, err = marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/lib"}}, sc.options(t, url))
	if !errors.Is(err, marketplace.ErrIndexAnswer) || !strings.Contains(err.Error(), "acme/lib (required by requested)") || !strings.Contains(err.Error(), "nopol/thing@0.1.0") {
		t.Fatalf("install through an index that answers another name: %v", err)
	}

	// The index names the publisher's repositories and puts the name
	// outside them.
	url = fixture.LyingIndex(t, sc.idx.Handler, func(s map[string]any) {
		s["boundRepositories"] = []string{reg.Host + "/elsewhere/**"}
	})
	_, err = marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/lib"}}, sc.options(t, url))
	if err == nil || !strings.Contains(err.Error(), "outside its publisher's repositories ("+reg.Host+"/elsewhere/**)") {
		t.Fatalf("install of a choice outside the publisher's repositories: %v", err)
	}
}

func TestResolveFromARegistryRefusesATagWhoseDescriptorIsAnotherVersion(t *testing.T) {
	ctx := context.Background()
	pub, _, pol := scenario(t, "retag")
	o := options(t, pub, "retag", pol)
	// Tag 1.9.0 names the content of 1.0.0: whoever can push tags cannot
	// make an old (or any other) version resolve as a newer one.
	repo, err := artifact.NewRepository(reg.Ref("retag/acme/lib"), pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, desc, "1.9.0"); err != nil {
		t.Fatal(err)
	}
	_, err = marketplace.Resolve(ctx, []resolve.Requirement{{Name: "acme/lib"}}, o)
	if err == nil || !strings.Contains(err.Error(), "holds acme/lib@1.0.0, not acme/lib@1.9.0") {
		t.Fatalf("resolving a tag that holds another version: %v", err)
	}
}
