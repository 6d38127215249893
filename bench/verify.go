package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
)

var benchPredicates = map[string]string{
	"review":        `{"reviewer":"bench","result":"approved","level":"internal"}`,
	"compatibility": `{"constraint":">=2.0.0 <3.0.0","tested":[{"factory":"2.1.0","result":"passed"}]}`,
	"terms":         `{"license":"MIT","pricing":{"model":"free"},"effectiveDate":"2026-01-01T00:00:00Z"}`,
}

// runVerify compares `mkt verify` of a signature plus three attestation
// types with stock cosign's four commands, counts the registry requests of
// each through a counting proxy, then verifies many artifacts in bulk.
func runVerify(mktBin string, runs, bulk int) error {
	ctx := context.Background()
	mktBin, _ = filepath.Abs(mktBin)
	cosignBin, err := testenv.FindTool("cosign")
	if err != nil {
		return err
	}
	be, err := newBenchEnv(mktBin, "verify")
	if err != nil {
		return err
	}
	defer be.close()
	work, host, proxy, env := be.work, be.host, be.proxy, be.env
	mkt := func(args ...string) (sample, error) { return timed(env, work, mktBin, args...) }

	if _, err := mkt("key", "generate", "--output-prefix", filepath.Join(work, "k")); err != nil {
		return err
	}
	ext := filepath.Join(work, "ext")
	if err := generate(ext, "bench/verified", 64<<10, 1); err != nil {
		return err
	}
	if _, err := mkt("push", "--plain-http", host+"/bench/verified", ext); err != nil {
		return err
	}
	repo, err := artifact.NewRepository(host+"/bench/verified", remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(work, "config.json")})
	if err != nil {
		return err
	}
	desc, err := repo.Resolve(ctx, "1.0.0")
	if err != nil {
		return err
	}
	ref := "/bench/verified@" + desc.Digest.String()
	if _, err := mkt("sign", "--plain-http", host+ref, "--key", filepath.Join(work, "k.key")); err != nil {
		return err
	}
	var types []string
	for typ, pred := range benchPredicates {
		f := filepath.Join(work, typ+".json")
		os.WriteFile(f, []byte(pred), 0o644)
		if _, err := mkt("attest", "--plain-http", host+ref, "--key", filepath.Join(work, "k.key"), "--type", typ, "--predicate", f); err != nil {
			return err
		}
		types = append(types, typ)
	}
	slices.Sort(types)

	var mktRuns, cosignRuns []time.Duration
	var mktReqs, cosignReqs int
	for i := 0; i < runs; i++ {
		args := []string{"verify", "--plain-http", proxy.Host + ref, "--key", filepath.Join(work, "k.pub"), "--format", "json"}
		for _, t := range types {
			args = append(args, "--require", t)
		}
		proxy.Clear()
		cmd := exec.Command(mktBin, args...)
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("mkt verify: %w\n%s", err, out)
		}
		mktRuns = append(mktRuns, time.Since(start))
		mktReqs = proxy.Requests()
		var res policy.Decision
		if json.Unmarshal(out, &res) != nil || !res.Passed {
			return fmt.Errorf("mkt verify did not pass: %s", out)
		}

		proxy.Clear()
		total := time.Duration(0)
		cargs := [][]string{{"verify", "--key", "k.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", proxy.Host + ref}}
		for _, t := range types {
			uri, _ := signing.PredicateType(t)
			cargs = append(cargs, []string{"verify-attestation", "--key", "k.pub", "--type", uri, "--insecure-ignore-tlog=true", "--allow-http-registry", proxy.Host + ref})
		}
		for _, a := range cargs {
			s, err := timed(env, work, cosignBin, a...)
			if err != nil {
				return err
			}
			total += s.wall
		}
		cosignRuns = append(cosignRuns, total)
		cosignReqs = proxy.Requests()
	}
	m, c := medianDur(mktRuns), medianDur(cosignRuns)
	fmt.Printf("| verify signature + %d attestation types | %.0f ms, %d requests | %.0f ms, %d requests (4 processes) | %.2f× |\n",
		len(types), ms(m), mktReqs, ms(c), cosignReqs, m.Seconds()/c.Seconds())

	return bulkVerify(ctx, host, work, bulk)
}

// bulkVerify pushes and signs n small artifacts with the library, then
// verifies them all with bounded concurrency and reports the rate.
func bulkVerify(ctx context.Context, host, work string, n int) error {
	if n <= 0 {
		return nil
	}
	ro := remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(work, "config.json")}
	pass := func(bool) ([]byte, error) { return []byte("bench"), nil }
	signer, err := signing.LoadSigner(ctx, filepath.Join(work, "k.key"), pass)
	if err != nil {
		return err
	}
	key, err := signing.LoadKey(ctx, filepath.Join(work, "k.pub"))
	if err != nil {
		return err
	}
	c, err := signing.NewClient(ro)
	if err != nil {
		return err
	}
	ext := filepath.Join(work, "bulk")
	if err := generate(ext, "bench/bulk", 4<<10, 1); err != nil {
		return err
	}
	start := time.Now()
	var refs []string
	for i := 0; i < n; i++ {
		desc := fmt.Sprintf("apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: bench/bulk\n  version: 1.0.%d\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n", i)
		os.WriteFile(filepath.Join(ext, "extension.yaml"), []byte(desc), 0o644)
		ref, err := pushSigned(ctx, ext, fmt.Sprintf("%s/bench/bulk-%d", host, i%50), ro, c, signer)
		if err != nil {
			return err
		}
		refs = append(refs, ref)
	}
	fmt.Printf("prepared %d signed artifacts in %v\n", n, time.Since(start).Round(time.Millisecond))
	for _, conc := range []int{1, 8, 32} {
		vc, err := signing.NewClient(ro)
		if err != nil {
			return err
		}
		start = time.Now()
		res, err := vc.VerifyMany(ctx, refs, signing.VerifyOptions{Keys: []*signing.Key{key}}, conc)
		if err != nil {
			return err
		}
		el := time.Since(start)
		for _, r := range res {
			if len(r.Signatures) == 0 || !r.Signatures[0].Verified {
				return fmt.Errorf("bulk: %s failed verification", r.Reference)
			}
		}
		fmt.Printf("| bulk verify %d artifacts, concurrency %d | %.2f s | %.0f artifacts/s | %.1f requests each |\n",
			n, conc, el.Seconds(), float64(n)/el.Seconds(), float64(vc.Requests())/float64(n))
	}
	return nil
}

func medianDur(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchEnv is what the verify and install benchmarks share: a work
// directory, `mkt dev up` in its own process, a counting proxy in front of
// it, and an environment with a private HOME and COSIGN_PASSWORD.
type benchEnv struct {
	work, host string
	proxy      *testenv.FaultProxy
	env        []string
	stop       func()
}

func newBenchEnv(mktBin, name string) (*benchEnv, error) {
	work, err := os.MkdirTemp("", "mkt-bench-"+name+"-*")
	if err != nil {
		return nil, err
	}
	host, stop, _, err := startRegistry(mktBin, filepath.Join(work, "registry"))
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	proxy, err := testenv.StartFaultProxy(host)
	if err != nil {
		stop()
		os.RemoveAll(work)
		return nil, err
	}
	env := []string{"HOME=" + work, "DOCKER_CONFIG=" + work, "COSIGN_PASSWORD=bench"}
	return &benchEnv{work: work, host: host, proxy: proxy, env: env, stop: stop}, nil
}

func (b *benchEnv) close() {
	b.proxy.Close()
	b.stop()
	os.RemoveAll(b.work)
}

// pushSigned packs dir, pushes it to repoName (tagged with its version)
// and signs the digest when s is set; it returns repoName@digest.
func pushSigned(ctx context.Context, dir, repoName string, ro remote.Options, c *signing.Client, s *signing.Signer) (string, error) {
	pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{})
	if err != nil {
		return "", err
	}
	defer pkg.Close()
	repo, err := artifact.NewRepository(repoName, ro)
	if err != nil {
		return "", err
	}
	if _, err := artifact.Push(ctx, repo, "", pkg, artifact.PushOptions{}); err != nil {
		return "", err
	}
	ref := repoName + "@" + pkg.Manifest.Digest.String()
	if s != nil {
		if _, err := c.Sign(ctx, ref, s, signing.WriteOptions{}); err != nil {
			return "", err
		}
	}
	return ref, nil
}
