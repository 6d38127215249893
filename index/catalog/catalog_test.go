package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// Every test runs on both stores: the catalog reads only the change feed,
// and both drivers must feed it the same.
func both(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.Postgres(t)) })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ver(tenant, name, version string, at time.Duration) *store.Version {
	return &store.Version{
		Tenant: tenant, Name: name, Version: version, Repository: "reg.example/" + name, Digest: "sha256:" + name + version,
		Kind: "Connector", Title: "Title of " + name, Description: "Sync accounts with " + name,
		Keywords: []string{"crm", "sync"}, License: "MIT", Factory: ">=2.0.0 <3.0.0", Visibility: store.Public,
		Signed: true, Descriptor: json.RawMessage(`{"kind":"Connector"}`), IngestedAt: t0.Add(at),
	}
}

func upsert(t *testing.T, st store.Store, vs ...*store.Version) {
	t.Helper()
	for _, v := range vs {
		if _, err := st.UpsertVersion(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
}

func search(t *testing.T, c *catalog.Catalog, q catalog.Query) ([]*store.Version, int) {
	t.Helper()
	got, total, err := c.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return got, total
}

func TestSearchTextFiltersAndPaging(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		for i := 0; i < 25; i++ {
			v := ver("acme", fmt.Sprintf("acme/ext%02d", i), "1.0.0", time.Duration(i)*time.Second)
			if i%5 == 0 {
				v.Kind, v.Description, v.Keywords = "Agent", "Reviews pull-requests", []string{"review"}
				v.Reviewed = true
			}
			if i == 7 {
				v.License, v.Factory = "Apache-2.0", ">=3.0.0"
			}
			upsert(t, st, v)
		}
		c := catalog.New(st)
		yes := true
		f25, f30 := semver.MustParse("2.5.0"), semver.MustParse("3.0.0")
		cases := []struct {
			q     catalog.Query
			total int
		}{
			{catalog.Query{}, 25},
			{catalog.Query{Text: "pull requests"}, 5},
			{catalog.Query{Text: "PULL"}, 5},
			{catalog.Query{Text: "requ"}, 5},       // a word's beginning
			{catalog.Query{Text: "equests"}, 0},    // not its middle
			{catalog.Query{Text: "acme/ext07"}, 1}, // words of the name
			{catalog.Query{Text: "ext0"}, 10},
			{catalog.Query{Name: "acme/ext07"}, 1},
			{catalog.Query{Name: "acme/ext0"}, 0},
			{catalog.Query{Text: "review", Kind: "Agent"}, 5},
			{catalog.Query{Kind: "Connector", License: "Apache-2.0"}, 1},
			{catalog.Query{Reviewed: &yes}, 5},
			{catalog.Query{Publisher: "acme"}, 25},
			{catalog.Query{Publisher: "globex"}, 0},
			{catalog.Query{Text: "100%"}, 0},
			{catalog.Query{Factory: f25}, 24},
			{catalog.Query{Factory: f30}, 1},
		}
		for _, tc := range cases {
			got, total := search(t, c, tc.q)
			if total != tc.total || len(got) != min(tc.total, 20) {
				t.Errorf("%+v: %d results of %d, want %d", tc.q, len(got), total, tc.total)
			}
		}
		page3, total := search(t, c, catalog.Query{Limit: 10, Offset: 20})
		if total != 25 || len(page3) != 5 || page3[0].Name != "acme/ext20" {
			t.Fatalf("page 3 of 10: %d of %d, first %v", len(page3), total, page3)
		}
	})
}

func TestSearchShowsLatestPerName(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		upsert(t, st, ver("acme", "acme/crm", "1.0.0", 0), ver("acme", "acme/crm", "1.1.0", time.Hour), ver("acme", "acme/crm", "0.9.0", -time.Hour))
		c := catalog.New(st)
		got, total := search(t, c, catalog.Query{Text: "crm"})
		if total != 1 || got[0].Version != "1.1.0" {
			t.Fatalf("latest per name: %d %+v", total, got)
		}
		// A new title on a newer version is what search matches.
		v := ver("acme", "acme/crm", "1.2.0", 2*time.Hour)
		v.Title = "Renamed ledger"
		upsert(t, st, v)
		if _, n := search(t, c, catalog.Query{Text: "ledger"}); n != 1 {
			t.Fatalf("the latest title is not searched: %d", n)
		}
		vs, err := c.Lookup(context.Background(), &catalog.Viewer{}, "acme/crm")
		if err != nil || len(vs) != 4 || vs[0].Version != "1.2.0" || vs[3].Version != "0.9.0" {
			t.Fatalf("Lookup, newest first: %+v %v", vs, err)
		}
	})
}

func TestVisibilityAndTenancy(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		a := ver("acme", "acme/secret", "1.0.0", 0)
		a.Visibility = store.Private
		b := ver("globex", "globex/secret", "1.0.0", 0)
		b.Visibility = store.Private
		o := ver("ops", "ops/tool", "1.0.0", 0)
		o.Visibility = store.Internal
		d := ver("acme", "acme/open", "1.0.0", 0)
		upsert(t, st, a, b, o, d)
		c := catalog.New(st)
		viewers := []struct {
			v    catalog.Viewer
			want int
		}{
			{catalog.Viewer{}, 1},                                 // anonymous: acme/open
			{catalog.Viewer{Tenant: "acme"}, 2},                   // + acme/secret
			{catalog.Viewer{Tenant: "globex"}, 2},                 // + globex/secret
			{catalog.Viewer{Tenant: "ops"}, 2},                    // + its own internal ops/tool
			{catalog.Viewer{Tenant: "acme", Operator: true}, 3},   // + internal ops/tool
			{catalog.Viewer{Tenant: "globex", Operator: true}, 3}, // + ops/tool, not acme/secret
		}
		for _, tc := range viewers {
			v := tc.v
			if got, n := search(t, c, catalog.Query{Viewer: &v}); n != tc.want {
				t.Errorf("viewer %+v sees %d (%v), want %d", tc.v, n, got, tc.want)
			}
			if vs, _ := c.Lookup(context.Background(), &v, "acme/secret"); (len(vs) > 0) != (v.Tenant == "acme") {
				t.Errorf("viewer %+v: Lookup of acme's private extension found %d versions", tc.v, len(vs))
			}
		}
		// The same name in two tenants is two extensions; each tenant's
		// Lookup finds its own copy, anonymous callers the first public one.
		e := ver("globex", "acme/open", "2.0.0", 0)
		e.Visibility = store.Private
		upsert(t, st, e)
		if _, n := search(t, c, catalog.Query{Text: "acme/open"}); n != 2 {
			t.Fatalf("same name in two tenants: %d", n)
		}
		for viewer, want := range map[string]string{"": "1.0.0", "acme": "1.0.0", "globex": "2.0.0"} {
			vs, err := c.Lookup(context.Background(), &catalog.Viewer{Tenant: viewer}, "acme/open")
			if err != nil || len(vs) != 1 || vs[0].Version != want {
				t.Errorf("tenant %q looks up acme/open: %+v %v, want %s", viewer, vs, err, want)
			}
		}
	})
}

// A write through the same store handle is visible to the next read; a
// write through another handle (another replica) within MaxLag.
func TestFreshness(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		c := catalog.New(st)
		c.MaxLag = time.Hour // only local writes may make it sync
		if _, n := search(t, c, catalog.Query{}); n != 0 {
			t.Fatalf("empty store: %d", n)
		}
		upsert(t, st, ver("acme", "acme/one", "1.0.0", 0))
		if _, n := search(t, c, catalog.Query{}); n != 1 {
			t.Fatalf("a local write is not visible to the next read: %d", n)
		}
	})
	t.Run("another replica", func(t *testing.T) {
		path := "sqlite://" + t.TempDir() + "/index.db"
		mine, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer mine.Close()
		other, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		c := catalog.New(mine)
		// Within MaxLag (an hour here, so a slow machine cannot outlast
		// it) the other handle's write is not read...
		c.MaxLag = time.Hour
		search(t, c, catalog.Query{})
		upsert(t, other, ver("acme", "acme/elsewhere", "1.0.0", 0))
		if _, n := search(t, c, catalog.Query{}); n != 0 {
			t.Fatalf("another handle's write seen before MaxLag: the test proves nothing (%d)", n)
		}
		// ...and once the last sync is older than MaxLag, it is.
		c.MaxLag = 50 * time.Millisecond
		time.Sleep(60 * time.Millisecond)
		if _, n := search(t, c, catalog.Query{}); n != 1 {
			t.Fatalf("another handle's write not seen after MaxLag: %d", n)
		}
	})
}

// Readers during a stream of writes see whole extensions, and the catalog
// ends with every write (run with -race).
func TestConcurrentReadsAndWrites(t *testing.T) {
	st := storetest.SQLite(t)
	c := catalog.New(st)
	c.MaxLag = 0
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := c.Search(ctx, catalog.Query{Text: "sync", Limit: 5})
				if err != nil {
					t.Error(err)
					return
				}
				for _, v := range got {
					if vs, _ := c.Lookup(ctx, &catalog.Viewer{}, v.Name); len(vs) == 0 {
						t.Errorf("%s found by search, not by Lookup", v.Name)
					}
				}
			}
		}()
	}
	for i := 0; i < 300; i++ {
		upsert(t, st, ver("acme", fmt.Sprintf("acme/e%d", i%30), fmt.Sprintf("1.%d.0", i/30), time.Duration(i)*time.Second))
	}
	close(stop)
	wg.Wait()
	if _, n := search(t, c, catalog.Query{}); n != 30 {
		t.Fatalf("%d extensions, want 30", n)
	}
	if vs, _ := c.Lookup(ctx, &catalog.Viewer{}, "acme/e0"); len(vs) != 10 || vs[0].Version != "1.9.0" {
		t.Fatalf("acme/e0: %d versions, newest %v", len(vs), vs[0])
	}
}

// Latest is the highest stable version, not the last ingested: a new
// signature on 0.1.0 (a re-ingest) after 1.0.0 leaves 1.0.0 latest, with
// its own Factory range, and a newer pre-release does not displace it.
func TestLatestIsTheHighestStableVersionNotTheLastIngested(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		old := ver("acme", "acme/crm", "0.1.0", 0)
		old.Factory = ">=1.0.0 <2.0.0"
		upsert(t, st, old, ver("acme", "acme/crm", "1.0.0", time.Minute), ver("acme", "acme/crm", "2.0.0-rc.1", 2*time.Minute))
		resigned := *old
		resigned.IngestedAt, resigned.Reviewed = t0.Add(time.Hour), true
		upsert(t, st, &resigned)
		c := catalog.New(st)
		got, total := search(t, c, catalog.Query{Text: "crm"})
		if total != 1 || got[0].Version != "1.0.0" {
			t.Fatalf("latest after re-ingesting 0.1.0: %+v", got)
		}
		if _, n := search(t, c, catalog.Query{Factory: semver.MustParse("1.5.0")}); n != 0 {
			t.Fatalf("0.1.0's Factory range is searched as the latest's")
		}
		vs, _ := c.Lookup(context.Background(), &catalog.Viewer{}, "acme/crm")
		var order []string
		for _, v := range vs {
			order = append(order, v.Version)
		}
		if fmt.Sprint(order) != "[2.0.0-rc.1 1.0.0 0.1.0]" {
			t.Fatalf("Lookup order %v, want highest first", order)
		}
	})
}

// Visibility is decided per version: when one name has a public version
// and a newer private one (two sources of one tenant), anonymous callers
// and other tenants find the extension by its public version only, and
// never the private one's fields, in search or Lookup.
func TestVisibilityIsPerVersionNotByTheLatest(t *testing.T) {
	both(t, func(t *testing.T, st store.Store) {
		pub := ver("acme", "acme/mixed", "1.0.0", 0)
		priv := ver("acme", "acme/mixed", "2.0.0", time.Minute)
		priv.Visibility, priv.Title, priv.Digest, priv.Kind = store.Private, "Confidential ledger", "sha256:private", "Agent"
		internal := ver("acme", "acme/mixed", "1.5.0", 2*time.Minute)
		internal.Visibility = store.Internal
		only := ver("acme", "acme/hidden", "1.0.0", 0)
		only.Visibility = store.Private
		upsert(t, st, pub, priv, internal, only)
		c := catalog.New(st)
		for _, tc := range []struct {
			v      *catalog.Viewer
			latest string
			seen   string
		}{
			{&catalog.Viewer{}, "1.0.0", "[1.0.0]"},
			{&catalog.Viewer{Tenant: "globex"}, "1.0.0", "[1.0.0]"},
			{&catalog.Viewer{Tenant: "ops", Operator: true}, "1.5.0", "[1.5.0 1.0.0]"},
			{&catalog.Viewer{Tenant: "acme"}, "2.0.0", "[2.0.0 1.5.0 1.0.0]"},
		} {
			got, n := search(t, c, catalog.Query{Viewer: tc.v, Name: "acme/mixed"})
			if n != 1 || got[0].Version != tc.latest {
				t.Errorf("viewer %+v: search %+v, want latest %s", tc.v, got, tc.latest)
			}
			_, ledger := search(t, c, catalog.Query{Viewer: tc.v, Text: "ledger"})
			_, agents := search(t, c, catalog.Query{Viewer: tc.v, Kind: "Agent"})
			if want := tc.latest == "2.0.0"; (ledger == 1) != want || (agents == 1) != want {
				t.Errorf("viewer %+v: the private version's title matched %d, kind %d", tc.v, ledger, agents)
			}
			vs, err := c.Lookup(context.Background(), tc.v, "acme/mixed")
			var seen []string
			for _, v := range vs {
				seen = append(seen, v.Version)
			}
			if err != nil || fmt.Sprint(seen) != tc.seen {
				t.Errorf("viewer %+v: Lookup %v %v, want %s", tc.v, seen, err, tc.seen)
			}
			if _, n := search(t, c, catalog.Query{Viewer: tc.v, Name: "acme/hidden"}); (n == 1) != (tc.v.Tenant == "acme") {
				t.Errorf("viewer %+v: the private-only extension found %d times", tc.v, n)
			}
		}
	})
}
