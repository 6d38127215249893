package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// runIngest measures the index's ingest, everything in this process on
// loopback: the rate of webhook events including verification against a
// local distribution registry, the time from a push to the version being
// searchable with the registry's real notifications, and the reconcile of
// an unchanged registry of many versions (time and requests per tag).
func runIngest(mktBin string, inProcess bool, events, deliveries, reconcileVersions int) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mkt-bench-ingest-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	pass := func(bool) ([]byte, error) { return []byte("bench"), nil }
	priv, pub, err := signing.GenerateKeyPair(pass)
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(work, "k.key"), priv, 0o600)
	os.WriteFile(filepath.Join(work, "k.pub"), pub, 0o644)
	signer, err := signing.LoadSigner(ctx, filepath.Join(work, "k.key"), pass)
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(work, "policy.yaml"), []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: bench, keys: [k.pub]}
rules:
  - name: bench
    match: {repositories: ["**"]}
    signatures: {trustRoots: [bench]}
`), 0o644)

	// The index, listening before the registries that notify it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	const secret = "bench-secret"
	quiet, liveReg, crawlReg := slog.New(slog.NewTextHandler(io.Discard, nil)), (*testenv.Registry)(nil), (*testenv.Registry)(nil)
	// The webhook's registry runs in its own process (`mkt dev up
	// --no-index`, filesystem storage), so that this process's CPU time is
	// the index's (and the event sender's): distribution's blob reads are
	// not cheap. inProcess runs it here instead (in memory), as the tests do.
	var bulkHost string
	registryCPU := func() time.Duration { return 0 }
	if inProcess {
		r, err := testenv.StartDistribution(testenv.DistributionOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		bulkHost = r.Host
	} else {
		mktBin, _ = filepath.Abs(mktBin)
		host, stopBulk, proc, err := startRegistry(mktBin, filepath.Join(work, "registry"))
		if err != nil {
			return err
		}
		defer stopBulk()
		bulkHost, registryCPU = host, func() time.Duration { return processCPU(proc.Pid) }
	}
	// The registry whose real notifications the latency is measured with:
	// the stock binary in its own process, as issue 9 asks (notifications
	// then race the registry's own tag writes, as in production).
	startLive := testenv.StartDistributionProcess
	if inProcess {
		startLive = testenv.StartDistribution
	}
	if liveReg, err = startLive(testenv.DistributionOptions{NotifyURL: base + "/api/v1/events/registry",
		NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}}}); err != nil {
		return err
	}
	defer liveReg.Close()
	if crawlReg, err = testenv.StartDistribution(testenv.DistributionOptions{}); err != nil {
		return err
	}
	defer crawlReg.Close()
	counter, err := testenv.StartFaultProxy(crawlReg.Host) // counts the crawl's requests
	if err != nil {
		return err
	}
	defer counter.Close()
	source := func(name, host string) index.Source {
		return index.Source{Name: name, Registry: host, PlainHTTP: true, Repositories: []string{"bench/**"}, Tenant: "bench", Visibility: "public"}
	}
	cfg := &index.Config{Store: "sqlite://index.db", Policy: "policy.yaml", WebhookSecret: secret, Dir: work,
		Sources: []index.Source{source("bulk", bulkHost), source("live", liveReg.Host), source("crawl", counter.Host)}}
	srv, err := index.NewServer(ctx, cfg, remote.Options{RegistryConfig: filepath.Join(work, "config.json")}, quiet)
	if err != nil {
		return err
	}
	defer srv.Store.Close()
	// The webhook queues events; the queue's workers ingest them.
	if err := srv.Queue.Start(ctx); err != nil {
		return err
	}
	defer srv.Queue.Stop(context.Background())
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	ro, err := remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(work, "config.json")}.Shared()
	if err != nil {
		return err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return err
	}
	src := work

	// 1. Webhook events: push and sign, then deliver one event per
	// version, several at a time, as several registries (or a registry's
	// replicas) would.
	start := time.Now()
	type pushed struct{ repo, tag, digest string }
	var all []pushed
	for i := 0; i < events; i++ {
		name := fmt.Sprintf("bench/hook%03d", i/10)
		ref, err := pushVersion(ctx, src, name, fmt.Sprintf("1.%d.0", i%10), bulkHost, ro, sc, signer)
		if err != nil {
			return err
		}
		all = append(all, pushed{name, fmt.Sprintf("1.%d.0", i%10), ref})
	}
	fmt.Printf("pushed and signed %d versions in %v\n", events, time.Since(start).Round(time.Millisecond))
	// Senders keep their connections, as distribution's notification
	// endpoints do: net/http's default keeps 2 per host, and redialing the
	// rest would be charged to the index.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: deliveries}}
	// deliverAll sends one event per version, deliveries at a time, and
	// reports the rate and the CPU it cost.
	deliverAll := func(what string, event func(p pushed) (tag, digest string)) error {
		cpu0, regCPU0 := cpuTime(), registryCPU()
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(deliveries)
		for i, p := range all {
			tag, digest := event(p)
			g.Go(func() error { return deliver(gctx, hc, base, secret, bulkHost, i, p.repo, tag, digest) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for { // until the queue has ingested every event
			n, err := srv.Queue.Pending(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond) // a count each time: not too often
		}
		el := time.Since(start)
		if n, err := searchTotal(base, "hook", true); err != nil || n != events/10 {
			return fmt.Errorf("after the webhook: %d extensions allowed, want %d (%v)", n, events/10, err)
		}
		cpu, regCPU := cpuTime()-cpu0, registryCPU()-regCPU0
		where := "registry in its own process"
		if inProcess {
			where = "registry in this process (its CPU counted as this process's)"
		}
		fmt.Printf("| webhook ingest with verification: %s, %d deliveries at a time, %s | %d versions | %.2f s | %.0f versions/s | CPU per version: this process %.2f ms, registry process %.2f ms |\n",
			what, deliveries, where, events, el.Seconds(), float64(events)/el.Seconds(), ms(cpu)/float64(events), ms(regCPU)/float64(events))
		return nil
	}
	if err := deliverAll("the version's push", func(p pushed) (string, string) { return p.tag, p.digest }); err != nil {
		return err
	}
	// What a registry sends next: the push of each version's signature,
	// which re-verifies the version.
	if err := deliverAll("its signature's push", func(p pushed) (string, string) {
		return artifact.CosignTag(digest.Digest(p.digest), artifact.SignatureTagSuffix), ""
	}); err != nil {
		return err
	}

	// 2. Push to search with the registry's own notifications: each
	// version pushed, then signed at once (the race of issue 9 item 1), and
	// timed until search shows it allowed and resolve chooses it.
	var visible, verified, resolved []time.Duration
	for i := 0; i < liveVersions; i++ {
		name := fmt.Sprintf("bench/live%03d", i)
		pushedAt, signedAt, err := pushTimed(ctx, src, name, liveReg.Host, ro, sc, signer)
		if err != nil {
			return err
		}
		v, err := waitSearch(base, fmt.Sprintf("live%03d", i), false, pushedAt)
		if err != nil {
			return err
		}
		a, err := waitSearch(base, fmt.Sprintf("live%03d", i), true, signedAt)
		if err != nil {
			return err
		}
		r, err := waitResolve(base, name, signedAt)
		if err != nil {
			return err
		}
		visible, verified, resolved = append(visible, v), append(verified, a), append(resolved, r)
	}
	slices.Sort(visible)
	slices.Sort(verified)
	slices.Sort(resolved)
	p := func(d []time.Duration, q float64) float64 { return ms(d[int(q*float64(len(d)-1))]) }
	fmt.Printf("| push → in search (registry process notification) | %d versions | p50 %.1f ms | p99 %.1f ms | max %.1f ms |\n", liveVersions, p(visible, .5), p(visible, .99), p(visible, 1))
	fmt.Printf("| signature push → signed and allowed in search | %d versions | p50 %.1f ms | p99 %.1f ms | max %.1f ms |\n", liveVersions, p(verified, .5), p(verified, .99), p(verified, 1))
	fmt.Printf("| signature push → chosen by resolve | %d versions | p50 %.1f ms | p99 %.1f ms | max %.1f ms |\n", liveVersions, p(resolved, .5), p(resolved, .99), p(resolved, 1))

	// 3. Reconcile: a first crawl ingests everything, a second finds
	// nothing changed. Every version is signed, so the registry holds a
	// .sig tag beside each version tag and the crawl compares both.
	start = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < reconcileVersions; i++ {
		g.Go(func() error {
			_, err := pushVersion(gctx, src, fmt.Sprintf("bench/crawl%04d", i/10), fmt.Sprintf("1.%d.0", i%10), crawlReg.Host, ro, sc, signer)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("pushed and signed %d versions in %v\n", reconcileVersions, time.Since(start).Round(time.Millisecond))
	crawlSrc := &cfg.Sources[2]
	first, err := srv.Crawler.Reconcile(ctx, crawlSrc)
	if err != nil || first.Ingested != reconcileVersions {
		return fmt.Errorf("first crawl: %+v %v", first, err)
	}
	fmt.Printf("| first crawl (ingest with verification) | %d versions | %.2f s | %.0f versions/s |\n", reconcileVersions, first.Duration.Seconds(), float64(reconcileVersions)/first.Duration.Seconds())
	before, cpu0 := counter.Requests(), cpuTime()
	again, err := srv.Crawler.Reconcile(ctx, crawlSrc)
	cpu := cpuTime() - cpu0
	if err != nil || again.Unchanged != reconcileVersions || again.Ingested != 0 {
		return fmt.Errorf("second crawl: %+v %v", again, err)
	}
	reqs := counter.Requests() - before
	tags := 2 * reconcileVersions // a version tag and a .sig tag each
	// The CPU is this process's: the index, the registry and the counting
	// proxy all run here.
	fmt.Printf("| reconcile, unchanged, evidence included | %d signed versions (%d tags) in %d repositories | %.2f s | %d requests (%.2f per tag) | CPU %.2f s |\n",
		reconcileVersions, tags, again.Repositories, again.Duration.Seconds(), reqs, float64(reqs)/float64(tags), cpu.Seconds())
	return nil
}

// pushVersion writes name@version into a directory of its own under work
// and pushes it with pushSigned (signed when signer is set); it returns the
// manifest digest.
func pushVersion(ctx context.Context, work, name, version, host string, ro remote.Options, c *signing.Client, signer *signing.Signer) (string, error) {
	dir, err := os.MkdirTemp(work, "ext-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	desc := fmt.Sprintf("apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: %s\n  version: %s\n  title: %s\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n", name, version, name)
	if err := os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(desc), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), bytes.Repeat([]byte("marketplace "), 300), 0o644); err != nil {
		return "", err
	}
	ref, err := pushSigned(ctx, dir, host+"/"+name, ro, c, signer)
	if err != nil {
		return "", err
	}
	_, d, _ := strings.Cut(ref, "@")
	return d, nil
}

// liveVersions is how many versions the push-to-search latency is
// measured over (p99 needs about a hundred).
const liveVersions = 100

// waitResolve polls resolve for name until it chooses a version and
// returns the time since from.
func waitResolve(base, name string, from time.Time) (time.Duration, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/resolve?name=" + url.QueryEscape(name))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Since(from), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not resolvable 30 s after its signature", name)
}

// pushTimed pushes and signs name@1.0.0 and says when the push and the
// signature were done.
func pushTimed(ctx context.Context, dir, name, host string, ro remote.Options, c *signing.Client, signer *signing.Signer) (time.Time, time.Time, error) {
	d, err := pushVersion(ctx, dir, name, "1.0.0", host, ro, nil, nil)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	pushedAt := time.Now()
	if _, err := c.Sign(ctx, host+"/"+name+"@"+d, signer, signing.WriteOptions{}); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return pushedAt, time.Now(), nil
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time another process has used (Linux /proc).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

var eventSeq atomic.Int64

// deliver posts one distribution notification for a pushed manifest.
func deliver(ctx context.Context, hc *http.Client, base, secret, host string, i int, repo, tag, digest string) error {
	var e index.Event
	e.ID = fmt.Sprintf("bench-%d-%d", i, eventSeq.Add(1))
	e.Action = "push"
	e.Target.MediaType = "application/vnd.oci.image.manifest.v1+json"
	e.Target.Digest, e.Target.Repository, e.Target.Tag = digest, repo, tag
	e.Target.URL = "http://" + host + "/v2/" + repo + "/manifests/" + digest
	e.Timestamp = time.Now()
	body, _ := json.Marshal(map[string]any{"events": []index.Event{e}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/events/registry", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("event %s: %d %s", e.ID, resp.StatusCode, b)
	}
	return nil
}

// searchTotal is how many extensions a search for q finds (only those the
// policy allowed, when allowed is set).
func searchTotal(base, q string, allowed bool) (int, error) {
	n := 0
	for page := 1; ; page++ {
		resp, err := http.Get(base + "/api/v1/extensions?q=" + url.QueryEscape(q) + "&page=" + fmt.Sprint(page))
		if err != nil {
			return 0, err
		}
		var res struct {
			Items []struct{ Allowed bool }
			Total int
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		for _, it := range res.Items {
			if it.Allowed || !allowed {
				n++
			}
		}
		if len(res.Items) == 0 || page*20 >= res.Total {
			return n, nil
		}
	}
}

// waitSearch polls search for q until it is found (and allowed, when
// asked) and returns the time since from.
func waitSearch(base, q string, allowed bool, from time.Time) (time.Duration, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := searchTotal(base, q, allowed); err != nil {
			return 0, err
		} else if n == 1 {
			return time.Since(from), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not in search (allowed %v) after 30 s", q, allowed)
}
