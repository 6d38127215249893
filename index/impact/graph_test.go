package impact

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// sliceFeed serves a fixed list of Links as the store's feed does (seq
// order, after, limit): the graph's input without a database, for the
// walk's own cases and the 100,000-version benchmark. The API tests run the
// graph on the real SQL stores.
type sliceFeed []*store.Links

func (f sliceFeed) LinkChanges(_ context.Context, after int64, limit int) ([]*store.Links, error) {
	var out []*store.Links
	for _, l := range f {
		if l.Seq > after && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

func links(seq int64, tenant, name, version string, deps ...string) *store.Links {
	l := &store.Links{Tenant: tenant, Name: name, Version: version, Digest: fmt.Sprintf("sha256:%064d", seq), Visibility: store.Public, Seq: seq}
	for i := 0; i+1 < len(deps); i += 2 {
		l.Dependencies = append(l.Dependencies, store.Dependency{Name: deps[i], Version: deps[i+1]})
	}
	return l
}

func names(ns []Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s@%s/%d", n.Name, n.Version.Version, n.Depth))
	}
	return out
}

func TestImpactFollowsOnlyConstraintsThatAdmitTheVersion(t *testing.T) {
	feed := sliceFeed{
		links(1, "acme", "acme/http", "1.2.0"),
		links(2, "acme", "acme/http", "2.0.0"),
		links(3, "acme", "acme/crm", "1.0.0", "acme/http", "^1.2.0"),
		links(4, "beta", "beta/sync", "0.1.0", "acme/crm", ">=1.0.0"),
		links(5, "gamma", "gamma/app", "3.0.0", "beta/sync", "~0.1.0"),
		links(6, "gamma", "gamma/other", "1.0.0", "acme/http", "^2.0.0"), // not 1.2.0
		links(7, "gamma", "gamma/bad", "1.0.0", "acme/http", "not a constraint"),
	}
	g := New(feed)
	ans, err := g.Impact(context.Background(), Query{Name: "acme/http", Version: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"acme/crm@1.0.0/1", "beta/sync@0.1.0/2", "gamma/app@3.0.0/3"}
	if got := names(ans.Dependents); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dependents %v, want %v", got, want)
	}
	if v := ans.Dependents[2].Via; v == nil || v.Name != "beta/sync" || ans.Dependents[2].Constraint != "~0.1.0" {
		t.Errorf("gamma/app came via %+v by %q", v, ans.Dependents[2].Constraint)
	}
	ans, err = g.Impact(context.Background(), Query{Name: "acme/http", Version: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ans.Dependents); fmt.Sprint(got) != "[gamma/other@1.0.0/1]" {
		t.Fatalf("dependents of 2.0.0: %v", got)
	}
}

func TestImpactByDigestAndKeyAndRefresh(t *testing.T) {
	a := links(1, "acme", "acme/http", "1.2.0")
	b := links(2, "acme", "acme/crm", "1.0.0", "acme/http", "^1")
	b.Signers = []string{"SHA256:acmekey"}
	feed := sliceFeed{a, b, links(3, "beta", "beta/app", "1.0.0", "acme/crm", "1.x")}
	g := New(feed)
	ans, err := g.Impact(context.Background(), Query{Digest: a.Digest})
	if err != nil || len(ans.Targets) != 1 || len(ans.Dependents) != 2 {
		t.Fatalf("by digest: %+v %v", ans, err)
	}
	ans, err = g.Impact(context.Background(), Query{Key: "SHA256:acmekey"})
	if err != nil || fmt.Sprint(names(ans.Targets), names(ans.Dependents)) != "[acme/crm@1.0.0/0] [beta/app@1.0.0/1]" {
		t.Fatalf("by key: %v %v %v", names(ans.Targets), names(ans.Dependents), err)
	}
	// A refresh of acme/crm without the signature (re-signed with another
	// key) leaves the key with nothing signed.
	b2 := *b
	b2.Seq, b2.Signers = 4, nil
	g.feed = append(feed, &b2)
	ans, err = g.Impact(context.Background(), Query{Key: "SHA256:acmekey"})
	if err != nil || len(ans.Targets) != 0 || len(ans.Dependents) != 0 {
		t.Fatalf("after refresh: %v %v %v", names(ans.Targets), names(ans.Dependents), err)
	}
	ans, err = g.Impact(context.Background(), Query{Name: "acme/http", Version: "1.2.0"})
	if err != nil || len(ans.Dependents) != 2 {
		t.Fatalf("the refreshed version lost its edges: %v %v", names(ans.Dependents), err)
	}
}

func TestImpactRefusesAmbiguousQueries(t *testing.T) {
	g := New(sliceFeed{})
	for _, q := range []Query{{}, {Name: "a/b"}, {Version: "1.0.0"}, {Name: "a/b", Version: "1.0.0", Digest: "sha256:00"}, {Digest: "abc"}} {
		if _, err := g.Impact(context.Background(), q); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%+v: %v, want ErrBadQuery", q, err)
		}
	}
}

func TestImpactSurvivesDependencyCycles(t *testing.T) {
	g := New(sliceFeed{
		links(1, "a", "a/x", "1.0.0", "a/y", "^1"),
		links(2, "a", "a/y", "1.0.0", "a/x", "^1"),
	})
	ans, err := g.Impact(context.Background(), Query{Name: "a/x", Version: "1.0.0"})
	if err != nil || fmt.Sprint(names(ans.Dependents)) != "[a/y@1.0.0/1]" {
		t.Fatalf("%v %v", names(ans.Dependents), err)
	}
}

// benchGraph is 100,000 versions: 10,000 names of 10 versions each, in
// 10 layers; each name depends on 1–3 names of the layers below, with
// caret constraints that admit some of their versions. Layer 0's first
// name is the popular base library whose 1.4.0 goes bad.
func benchGraph() sliceFeed {
	r := rand.New(rand.NewPCG(1, 2))
	const layers, perLayer, versions = 10, 1000, 10
	var feed sliceFeed
	seq := int64(0)
	name := func(layer, i int) string { return fmt.Sprintf("p%d/n%d", layer, i) }
	for layer := range layers {
		for i := range perLayer {
			var deps []string
			if layer > 0 {
				for range 1 + r.IntN(3) {
					l := r.IntN(layer)
					j := r.IntN(perLayer)
					if r.IntN(5) == 0 {
						j = 0 // the popular one
					}
					deps = append(deps, name(l, j), fmt.Sprintf("^1.%d.0", r.IntN(versions)))
				}
			}
			for v := range versions {
				seq++
				feed = append(feed, links(seq, fmt.Sprintf("t%d", r.IntN(50)), name(layer, i), fmt.Sprintf("1.%d.0", v), deps...))
			}
		}
	}
	return feed
}

func BenchmarkImpact100k(b *testing.B) {
	g := New(benchGraph())
	ctx := context.Background()
	ans, err := g.Impact(ctx, Query{Name: "p0/n0", Version: "1.4.0"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := g.Impact(ctx, Query{Name: "p0/n0", Version: "1.4.0"}); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine wall time measures the neighbours too; the
	// process's CPU time per query is what the query costs.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(len(ans.Dependents)), "dependents")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkImpactBuild100k(b *testing.B) {
	feed := benchGraph()
	for b.Loop() {
		if err := New(feed).Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGraphTenantsAreTheOwners(t *testing.T) {
	got, err := GraphTenants{}.TenantsUsing(context.Background(), []Version{{Tenant: "a", Name: "a/x"}, {Tenant: "b", Name: "b/y"}, {Tenant: "a", Name: "a/z"}})
	if err != nil || len(got) != 2 || len(got["a"]) != 2 || len(got["b"]) != 1 {
		t.Fatalf("%v %v", got, err)
	}
}
