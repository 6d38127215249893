package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

const reviewed = `
rules:
  - name: acme
    match: {repositories: ["%s/res/**"]}
    signatures: {trustRoots: [publishers]}
    attestations:
      - {type: review, trustRoots: [review], condition: 'predicate.result == "approved"'}
    compatibility: required
    licenses: {allow: [MIT, Apache-2.0]}
`

func TestResolvePassesOverWithReasons(t *testing.T) {
	w := newWorld(t, "p1", "p2", "p3", "rev")
	pub, rev := w.Keys["p1"], w.Keys["rev"]
	approve := `{"reviewer":"sec","result":"approved","level":"internal","time":"2026-05-01T00:00:00Z"}`
	good := func(e fixture.Ext) string {
		ref := w.Pub.Publish("res", e)
		w.Pub.Sign(ref, pub)
		w.Pub.Attest(ref, rev, "review", approve)
		return ref
	}
	good(fixture.Ext{Name: "acme/lib", Version: "1.0.0"})
	good(fixture.Ext{Name: "acme/lib", Version: "1.1.0", Factory: ">=3.0.0"})              // incompatible
	w.Pub.Publish("res", fixture.Ext{Name: "acme/lib", Version: "1.2.0"})                  // unsigned
	w.Pub.Sign(w.Pub.Publish("res", fixture.Ext{Name: "acme/lib", Version: "1.3.0"}), pub) // unreviewed
	y := good(fixture.Ext{Name: "acme/lib", Version: "1.4.0"})
	w.Pub.Attest(y, pub, "lifecycle", `{"status":"yanked","reason":"broken build"}`) // yanked
	r := good(fixture.Ext{Name: "acme/lib", Version: "1.5.0"})
	w.Pub.Attest(r, rev, "review", `{"reviewer":"sec","result":"revoked","level":"internal","notes":"CVE","time":"2026-06-01T00:00:00Z"}`) // revoked
	good(fixture.Ext{Name: "acme/lib", Version: "1.6.0", License: "GPL-3.0-only"})                                                         // licence
	good(fixture.Ext{Name: "acme/lib", Version: "2.0.0-rc.1"})                                                                             // pre-release
	good(fixture.Ext{Name: "acme/app", Version: "1.0.0", Deps: map[string]string{"acme/lib": "^1.0.0"}})
	good(fixture.Ext{Name: "acme/other", Version: "1.0.0", Deps: map[string]string{"acme/lib": "^2.0.0-0"}})
	good(fixture.Ext{Name: "acme/both", Version: "1.0.0", Deps: map[string]string{"acme/app": "^1.0.0", "acme/other": "^1.0.0"}})

	p := w.MustPolicy(roots + fmt.Sprintf(reviewed, reg.Host))
	src, err := resolve.NewRegistrySource(reg.Host+"/res", w.Pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := resolve.Options{FactoryVersion: "2.5.0", Policy: p}
	res, err := resolve.Resolve(ctx, src, []resolve.Requirement{{Name: "acme/app"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	lib := res.Find("acme/lib")
	if lib == nil || lib.Version != "1.0.0" || res.Find("acme/app").Version != "1.0.0" {
		t.Fatalf("resolution: %+v", res.Selected)
	}
	want := map[string]string{
		"1.6.0": "licence GPL-3.0-only is not allowed",
		"1.5.0": "result=revoked",
		"1.4.0": "yanked: broken build",
		"1.3.0": "no review attestation",
		"1.2.0": "unsigned",
		"1.1.0": "incompatible: Factory 2.5.0 does not satisfy >=3.0.0",
	}
	if len(lib.PassedOver) != len(want) {
		t.Fatalf("passed over %d versions, want %d: %+v", len(lib.PassedOver), len(want), lib.PassedOver)
	}
	for _, po := range lib.PassedOver {
		if !strings.Contains(strings.Join(po.Reasons, "; "), want[po.Version]) {
			t.Errorf("%s passed over for %q, want %q", po.Version, po.Reasons, want[po.Version])
		}
		if po.Version == "1.1.0" && len(po.Reasons) != 1 {
			t.Errorf("1.1.0 passed over with the Factory range said %d times: %q", len(po.Reasons), po.Reasons)
		}
	}
	if got := strings.Join(lib.RequiredBy, ","); !strings.Contains(got, "acme/app@1.0.0 (^1.0.0)") {
		t.Errorf("required by %q", got)
	}

	// A pre-release only when the constraint asks for one.
	pre, err := resolve.Resolve(ctx, src, []resolve.Requirement{{Name: "acme/lib", Constraint: ">=2.0.0-0"}}, opts)
	if err != nil || pre.Find("acme/lib").Version != "2.0.0-rc.1" {
		t.Fatalf("pre-release: %+v %v", pre, err)
	}
	// Two requirers that no version satisfies together.
	_, err = resolve.Resolve(ctx, src, []resolve.Requirement{{Name: "acme/both"}}, opts)
	if !errors.Is(err, resolve.ErrUnresolvable) || !strings.Contains(err.Error(), "acme/app@1.0.0") || !strings.Contains(err.Error(), "acme/other@1.0.0") {
		t.Fatalf("conflict not reported with both requirers: %v", err)
	}
	// Without a policy, the newest compatible version wins.
	loose, err := resolve.Resolve(ctx, src, []resolve.Requirement{{Name: "acme/lib", Constraint: "^1.0.0"}}, resolve.Options{FactoryVersion: "2.5.0"})
	if err != nil || loose.Find("acme/lib").Version != "1.6.0" {
		t.Fatalf("no policy: %+v %v", loose, err)
	}
}

// The benchmark graph: n extensions with v versions each; extension i
// depends on i+1 and i+7 (when they exist) with caret constraints.
func memoryGraph(n, v int) (*resolve.MemorySource, []resolve.Requirement) {
	var cands []*resolve.Candidate
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			deps := ""
			for _, k := range []int{i + 1, i + 7} {
				if k < n {
					deps += fmt.Sprintf("    - {name: bench/e%04d, version: \"^1.0.0\"}\n", k)
				}
			}
			ext := fixture.Module(fmt.Sprintf("bench/e%04d", i), fmt.Sprintf("1.%d.0", j), deps)
			cands = append(cands, &resolve.Candidate{Name: ext.Metadata.Name, Version: ext.Metadata.Version, Extension: ext})
		}
	}
	return resolve.NewMemorySource(cands), []resolve.Requirement{{Name: "bench/e0000", Constraint: "^1.0.0"}}
}

func TestResolveMemoryGraph(t *testing.T) {
	src, reqs := memoryGraph(200, 5)
	start := time.Now()
	res, err := resolve.Resolve(context.Background(), src, reqs, resolve.Options{FactoryVersion: "2.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Selected) != 200 || res.Find("bench/e0199").Version != "1.4.0" {
		t.Fatalf("selected %d, e0199 %+v", len(res.Selected), res.Find("bench/e0199"))
	}
	_ = start
}

func BenchmarkResolve1000x20(b *testing.B) {
	src, reqs := memoryGraph(1000, 20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := resolve.Resolve(ctx, src, reqs, resolve.Options{FactoryVersion: "2.5.0"})
		if err != nil || len(res.Selected) != 1000 {
			b.Fatal(err)
		}
	}
}
