package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
)

// runInstall publishes n signed and reviewed extensions (bench/x000 depends
// on all the others) and times `mkt install` of the whole graph with a
// policy, counting registry requests through a proxy.
func runInstall(mktBin string, n, runs int) error {
	ctx := context.Background()
	mktBin, _ = filepath.Abs(mktBin)
	be, err := newBenchEnv(mktBin, "install")
	if err != nil {
		return err
	}
	defer be.close()
	work, host, proxy, env := be.work, be.host, be.proxy, be.env
	if _, err := timed(env, work, mktBin, "key", "generate", "--output-prefix", filepath.Join(work, "k")); err != nil {
		return err
	}
	ro := remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(work, "config.json")}
	pass := func(bool) ([]byte, error) { return []byte("bench"), nil }
	signer, err := signing.LoadSigner(ctx, filepath.Join(work, "k.key"), pass)
	if err != nil {
		return err
	}
	c, err := signing.NewClient(ro)
	if err != nil {
		return err
	}
	for i := n - 1; i >= 0; i-- {
		dir := filepath.Join(work, "src", fmt.Sprint(i))
		if err := generate(dir, fmt.Sprintf("bench/x%03d", i), 256<<10, 0.5); err != nil {
			return err
		}
		if i == 0 {
			var deps strings.Builder
			deps.WriteString("  dependencies:\n")
			for j := 1; j < n; j++ {
				fmt.Fprintf(&deps, "    - {name: bench/x%03d, version: \"^1.0.0\"}\n", j)
			}
			f, _ := os.OpenFile(filepath.Join(dir, "extension.yaml"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(deps.String())
			f.Close()
		}
		ref, err := pushSigned(ctx, dir, fmt.Sprintf("%s/lib/bench/x%03d", host, i), ro, c, signer)
		if err != nil {
			return err
		}
		if _, err := c.Attest(ctx, ref, signer, signing.ReviewV1, []byte(benchPredicates["review"]), signing.WriteOptions{}); err != nil {
			return err
		}
	}
	pol := filepath.Join(work, "policy.yaml")
	os.WriteFile(pol, []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: bench, keys: [k.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [bench]}
    attestations:
      - {type: review, trustRoots: [bench], condition: 'predicate.result == "approved"'}
    compatibility: required
`), 0o644)
	var walls []time.Duration
	reqs := 0
	for r := 0; r < runs; r++ {
		out := filepath.Join(work, fmt.Sprintf("out-%d", r))
		proxy.Clear()
		s, err := timed(env, work, mktBin, "install", "--plain-http", "bench/x000", "--registry", proxy.Host+"/lib",
			"--policy", pol, "--factory-version", "2.4.0", "-o", out, "--lockfile", filepath.Join(work, "lock.json"), "--concurrency", "8")
		if err != nil {
			return err
		}
		walls = append(walls, s.wall)
		reqs = proxy.Requests()
		os.RemoveAll(out)
	}
	m := medianDur(walls)
	fmt.Printf("| install %d extensions (256 KiB each), policy: signature + review + compatibility | %.2f s | %d requests (%.1f per extension) |\n", n, m.Seconds(), reqs, float64(reqs)/float64(n))
	return nil
}
