package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/resolve/snapshot"
)

// runSnapshot measures signed snapshots (issue 13: 100,000 versions
// written in ≤ 10 s, verified by a client in ≤ 1 s): exts×vers versions
// loaded into SQLite, then, runs times, mkt index snapshot's work (read
// the store, build and sign the TUF metadata, push to an OCI layout) and a
// client's (verify the artifact from the layout with a new cache, then
// again with the cache the first verification filled).
func runSnapshot(exts, vers, runs int) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mkt-bench-snapshot-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(work, "index.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	if err := load(ctx, st, exts, vers); err != nil {
		return err
	}
	fmt.Printf("loaded %d versions of %d extensions in %v\n", exts*vers, exts, time.Since(start).Round(time.Millisecond))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	signer, err := snapshot.NewSigner(key)
	if err != nil {
		return err
	}
	layout := filepath.Join(work, "airgap")
	dst, _, err := artifact.OpenLayout(layout)
	if err != nil {
		return err
	}
	var root []byte
	for i := range runs {
		tag := fmt.Sprintf("v%d", i+1)
		start, cpu0 := time.Now(), cpuTime()
		w, err := index.WriteSnapshot(ctx, st, index.SnapshotOptions{Signer: signer}, dst, tag)
		if err != nil {
			return err
		}
		write, writeCPU := time.Since(start), cpuTime()-cpu0
		if root == nil {
			root = w.Root
		}
		src, _, err := artifact.OpenLayoutReadOnly(ctx, layout)
		if err != nil {
			return err
		}
		cache := filepath.Join(work, fmt.Sprintf("cache%d", i))
		var cold, warm, coldCPU, warmCPU time.Duration
		for j, d := range [][2]*time.Duration{{&cold, &coldCPU}, {&warm, &warmCPU}} {
			start, cpu0 = time.Now(), cpuTime()
			s, err := snapshot.Open(ctx, src, tag, snapshot.OpenOptions{Root: root, CacheDir: cache})
			if err != nil {
				return fmt.Errorf("verify %d: %w", j, err)
			}
			*d[0], *d[1] = time.Since(start), cpuTime()-cpu0
			if len(s.Catalog.Versions) != w.Versions {
				return fmt.Errorf("verified %d versions, wrote %d", len(s.Catalog.Versions), w.Versions)
			}
		}
		ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		fmt.Printf("| %d | %d versions | write %v (CPU %v) | verify, new client %v (CPU %v) | verify, cached metadata %v (CPU %v) |\n",
			w.Version, w.Versions, ms(write), ms(writeCPU), ms(cold), ms(coldCPU), ms(warm), ms(warmCPU))
	}
	return nil
}
