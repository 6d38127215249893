package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"golang.org/x/sync/errgroup"
)

// runIndex measures the index: search and resolve latency under 32
// concurrent clients with exts×vers versions loaded, on SQLite and on
// PostgreSQL (when pgURL is reachable).
func runIndex(exts, vers int, pgURL string, dur time.Duration) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mkt-bench-index-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	stores := []struct{ name, url string }{{"sqlite", "sqlite://" + filepath.Join(work, "index.db")}}
	// settle runs after loading: PostgreSQL's autovacuum would otherwise
	// analyze the fresh 100,000 rows during the measurement.
	settle := map[string]func(){}
	if pgURL != "" {
		schema := fmt.Sprintf("mkt_bench_%d", os.Getpid())
		admin, err := sql.Open("pgx", pgURL)
		if err == nil && admin.PingContext(ctx) == nil {
			admin.Exec("CREATE SCHEMA " + schema)
			defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			stores = append(stores, struct{ name, url string }{"postgres", pgURL + "&search_path=" + schema})
			settle["postgres"] = func() { admin.Exec("VACUUM ANALYZE " + schema + ".versions") }
		} else {
			fmt.Printf("postgres at %s unreachable; skipping it\n", pgURL)
		}
	}
	for _, s := range stores {
		st, err := store.Open(ctx, s.url)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := load(ctx, st, exts, vers); err != nil {
			return err
		}
		fmt.Printf("%s: loaded %d versions of %d extensions in %v\n", s.name, exts*vers, exts, time.Since(start).Round(time.Millisecond))
		if f := settle[s.name]; f != nil {
			f()
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		api := &index.API{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		srv := &http.Server{Handler: api.Handler()}
		go srv.Serve(ln)
		base := "http://" + ln.Addr().String()
		// The first request fills the catalog from the store's change feed.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start = time.Now()
		resp, err := http.Get(base + "/api/v1/extensions?q=crm")
		if err != nil {
			return err
		}
		resp.Body.Close()
		filled := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		fmt.Printf("%s: first search (catalog filled from the change feed) %v; Go heap +%.0f MiB\n", s.name, filled.Round(time.Millisecond),
			float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
		for _, kind := range []string{"search", "resolve"} {
			r := hammer(base, kind, exts, 32, dur)
			fmt.Printf("| %s | %s | %d | %.0f req/s | p50 %.1f ms | p99 %.1f ms | errors %d |\n", s.name, kind, exts*vers, r.rate, r.p50, r.p99, r.errors)
		}
		srv.Close()
		st.Close()
	}
	return nil
}

// load writes exts extensions with vers versions each; extension i depends
// on i+1, so resolve walks a small closure.
func load(ctx context.Context, st store.Store, exts, vers int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	words := []string{"crm", "sync", "billing", "agent", "review", "http", "template", "service", "queue", "search"}
	t0 := time.Now()
	for i := 0; i < exts; i++ {
		g.Go(func() error {
			name := fmt.Sprintf("pub%03d/ext%05d", i%500, i)
			for j := 0; j < vers; j++ {
				ext := &artifact.Extension{APIVersion: artifact.APIVersion, Kind: artifact.KindModule,
					Metadata: artifact.Metadata{Name: name, Version: fmt.Sprintf("1.%d.0", j), Title: words[i%10] + " " + words[(i/10)%10],
						Description: "Extension " + name + " for " + words[(i/3)%10]},
					Spec: artifact.Spec{License: "MIT", Compatibility: artifact.Compatibility{Factory: ">=2.0.0 <3.0.0"}}}
				if i+1 < exts {
					ext.Spec.Dependencies = []artifact.Dependency{{Name: fmt.Sprintf("pub%03d/ext%05d", (i+1)%500, i+1), Version: "^1.0.0"}}
				}
				desc, _ := json.Marshal(ext)
				_, err := st.UpsertVersion(gctx, &store.Version{Tenant: "bench", Name: name, Version: ext.Metadata.Version,
					Repository: "reg.example/" + name, Digest: fmt.Sprintf("sha256:%064x", i*1000+j), Kind: "Module",
					Title: ext.Metadata.Title, Description: ext.Metadata.Description, Keywords: []string{words[i%10]},
					License: "MIT", Factory: ">=2.0.0 <3.0.0", Visibility: store.Public, Signed: j%2 == 0, Allowed: true,
					Descriptor: desc, IngestedAt: t0.Add(time.Duration(j) * time.Second)})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

type hammered struct {
	rate, p50, p99 float64
	errors         int64
}

// hammer runs clients goroutines against base for dur and reports latency.
func hammer(base, kind string, exts, clients int, dur time.Duration) hammered {
	words := []string{"crm", "sync", "billing", "agent", "review", "http", "template", "service", "queue", "search"}
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(dur)
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var mine []time.Duration
			for time.Now().Before(deadline) {
				var url string
				if kind == "search" {
					url = fmt.Sprintf("%s/api/v1/extensions?q=%s&page=%d", base, words[rng.IntN(10)], 1+rng.IntN(3))
				} else {
					i := exts - 1 - rng.IntN(min(exts, 50)) // a closure of up to 50
					url = fmt.Sprintf("%s/api/v1/resolve?name=pub%03d/ext%05d&factory=2.5.0", base, i%500, i)
				}
				start := time.Now()
				resp, err := hc.Get(url)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	tr.CloseIdleConnections()
	slices.Sort(lat)
	ms := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
	}
	return hammered{rate: float64(len(lat)) / dur.Seconds(), p50: ms(.5), p99: ms(.99), errors: errs.Load()}
}
