// Command bench compares mkt with the stock oras CLI on the same machine, in
// the same run, against the same registry: push and pull of a ~100 MiB
// extension (half text, half random bytes), and the peak memory of pulling a
// 1 GiB one. The registry is `mkt dev up` in its own process with blobs on
// disk, so neither client shares a process with it.
//
//	go run ./bench -mkt bin/mkt [-size 100] [-runs 5] [-big 1024] [-out results.md]
//	go run ./bench -mkt bin/mkt -mode verify [-runs 5] [-bulk 1000]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/connectsoft/marketplace/testenv"
)

func main() {
	mktBin := flag.String("mkt", "bin/mkt", "mkt binary to measure")
	sizeMiB := flag.Int("size", 100, "size of the push/pull extension in MiB")
	runs := flag.Int("runs", 5, "runs of each measurement (the median is reported)")
	bigMiB := flag.Int("big", 1024, "size of the memory-test extension in MiB (0 skips it)")
	out := flag.String("out", "", "also write the results table to this file")
	mode := flag.String("mode", "transfer", "transfer (push/pull against oras), verify (against cosign) install (50 extensions with a policy), index (search/resolve under load), snapshot (write and verify a signed snapshot of -extensions×-versions) or ingest (webhook rate, push-to-search latency, reconcile)")
	bulk := flag.Int("bulk", 1000, "artifacts in the bulk verification (verify mode)")
	exts := flag.Int("extensions", 10000, "extensions loaded (index mode)")
	vers := flag.Int("versions", 10, "versions per extension (index mode)")
	pg := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL for the index mode (\"\" skips it)")
	dur := flag.Duration("duration", 5*time.Second, "load duration per measurement (index mode)")
	events := flag.Int("events", 1000, "webhook events delivered (ingest mode)")
	inProcess := flag.Bool("in-process-registry", false, "run the webhook's registry in the bench's process, in memory (ingest mode)")
	deliveries := flag.Int("deliveries", 8, "webhook deliveries at a time (ingest mode)")
	reconcile := flag.Int("reconcile", 10000, "versions in the reconciled registry (ingest mode)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	switch *mode {
	case "transfer":
		err = run(*mktBin, *sizeMiB, *runs, *bigMiB, *out)
	case "verify":
		err = runVerify(*mktBin, *runs, *bulk)
	case "install":
		err = runInstall(*mktBin, 50, *runs)
	case "ingest":
		err = runIngest(*mktBin, *inProcess, *events, *deliveries, *reconcile)
	case "index":
		err = runIndex(*exts, *vers, *pg, *dur)
	case "snapshot":
		err = runSnapshot(*exts, *vers, *runs)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

func run(mktBin string, sizeMiB, runs, bigMiB int, outFile string) error {
	mktBin, err := filepath.Abs(mktBin)
	if err != nil {
		return err
	}
	orasBin, err := testenv.FindTool("oras")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mkt-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	home := filepath.Join(work, "home")
	os.MkdirAll(home, 0o755)
	env := []string{"HOME=" + home, "DOCKER_CONFIG=" + home}

	host, stop, _, err := startRegistry(mktBin, filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer stop()

	src := filepath.Join(work, "src")
	if err := generate(src, "bench/mixed", int64(sizeMiB)<<20, 0.5); err != nil {
		return err
	}
	fmt.Printf("dataset: %d MiB (half text, half random) in %s; registry %s; %d runs each\n", sizeMiB, src, host, runs)

	var table []string
	row := func(what string, mkt, oras []sample) {
		m, o := median(mkt), median(oras)
		r := fmt.Sprintf("| %s | %.2f s | %.2f s | %.2f× | %d MiB | %d MiB |", what, m.wall.Seconds(), o.wall.Seconds(), m.wall.Seconds()/o.wall.Seconds(), m.maxRSS>>10, o.maxRSS>>10)
		fmt.Println(r)
		table = append(table, r)
	}
	table = append(table, "| operation | mkt | oras | mkt/oras | mkt peak RSS | oras peak RSS |", "|---|---|---|---|---|---|")

	// Push: every run goes to a fresh repository, so every byte is uploaded.
	var mktPush, orasPush []sample
	for i := 0; i < runs; i++ {
		s, err := timed(env, "", mktBin, "push", "--plain-http", fmt.Sprintf("%s/bench/mkt-%d:1.0.0", host, i), src)
		if err != nil {
			return err
		}
		mktPush = append(mktPush, s)
		s, err = timed(env, src, orasBin, "push", "--plain-http", fmt.Sprintf("%s/bench/oras-%d:1.0.0", host, i), ".")
		if err != nil {
			return err
		}
		orasPush = append(orasPush, s)
	}
	row(fmt.Sprintf("push %d MiB", sizeMiB), mktPush, orasPush)

	var mktPull, orasPull []sample
	for i := 0; i < runs; i++ {
		dst := filepath.Join(work, fmt.Sprintf("pull-mkt-%d", i))
		s, err := timed(env, "", mktBin, "pull", "--plain-http", host+"/bench/mkt-0:1.0.0", "-o", dst)
		if err != nil {
			return err
		}
		mktPull = append(mktPull, s)
		os.RemoveAll(dst)
		dst = filepath.Join(work, fmt.Sprintf("pull-oras-%d", i))
		s, err = timed(env, "", orasBin, "pull", "--plain-http", host+"/bench/oras-0:1.0.0", "-o", dst)
		if err != nil {
			return err
		}
		orasPull = append(orasPull, s)
		os.RemoveAll(dst)
	}
	row(fmt.Sprintf("pull %d MiB", sizeMiB), mktPull, orasPull)
	os.RemoveAll(src)

	if bigMiB > 0 {
		big := filepath.Join(work, "big")
		if err := generate(big, "bench/big", int64(bigMiB)<<20, 0.1); err != nil {
			return err
		}
		if _, err := timed(env, "", mktBin, "push", "--plain-http", host+"/bench/big:1.0.0", big); err != nil {
			return err
		}
		if _, err := timed(env, big, orasBin, "push", "--plain-http", host+"/bench/big-oras:1.0.0", "."); err != nil {
			return err
		}
		os.RemoveAll(big)
		m, err := timed(env, "", mktBin, "pull", "--plain-http", host+"/bench/big:1.0.0", "-o", filepath.Join(work, "big-mkt"))
		if err != nil {
			return err
		}
		os.RemoveAll(filepath.Join(work, "big-mkt"))
		o, err := timed(env, "", orasBin, "pull", "--plain-http", host+"/bench/big-oras:1.0.0", "-o", filepath.Join(work, "big-oras"))
		if err != nil {
			return err
		}
		row(fmt.Sprintf("pull %d MiB (memory)", bigMiB), []sample{m}, []sample{o})
	}
	if outFile != "" {
		return os.WriteFile(outFile, []byte(strings.Join(table, "\n")+"\n"), 0o644)
	}
	return nil
}

// timed runs a command and returns its wall time and peak resident memory.
func timed(env []string, dir, bin string, args ...string) (sample, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	s := sample{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.maxRSS = ru.Maxrss
	}
	return s, nil
}

func median(s []sample) sample {
	slices.SortFunc(s, func(a, b sample) int { return int(a.wall - b.wall) })
	m := s[len(s)/2]
	for _, x := range s {
		m.maxRSS = max(m.maxRSS, x.maxRSS)
	}
	return m
}

func startRegistry(mktBin, root string) (string, func(), *os.Process, error) {
	addr := root + ".addr"
	// The registry alone: an index ingesting during measurements would skew them.
	cmd := exec.Command(mktBin, "dev", "up", "--no-index", "--listen", "127.0.0.1:0", "--root", root, "--addr-file", addr)
	if err := cmd.Start(); err != nil {
		return "", nil, nil, err
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), stop, cmd.Process, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	return "", nil, nil, fmt.Errorf("registry did not start")
}

var words = strings.Fields(`func return if else for range package import type struct interface map string int error nil
context ctx err value config handler request response client server registry manifest layer digest descriptor
template agent module connector factory version compatible license review signature attestation policy index`)

// generate writes an extension of about size bytes: textFrac of it as
// source-like text in many small files, the rest as random bytes in a few
// large ones, so compression sees both what it is good and bad at.
func generate(dir, name string, size int64, textFrac float64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	desc := fmt.Sprintf("apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: %s\n  version: 1.0.0\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n", name)
	if err := os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(desc), 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	text := int64(float64(size) * textFrac)
	for i, written := 0, int64(0); written < text; i++ {
		p := filepath.Join(dir, "src", fmt.Sprintf("pkg%02d", i%40), fmt.Sprintf("file%04d.go", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		for n := 0; n < 64<<10; {
			line := make([]string, 4+rng.IntN(8))
			for j := range line {
				line[j] = words[rng.IntN(len(words))]
			}
			k, _ := fmt.Fprintf(w, "\t%s // %d\n", strings.Join(line, " "), rng.IntN(100000))
			n += k
			written += int64(k)
		}
		w.Flush()
		f.Close()
	}
	random := size - text
	buf := make([]byte, 1<<20)
	for i := 0; random > 0; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("data-%02d.bin", i)))
		if err != nil {
			return err
		}
		n := min(random, 32<<20)
		for left := n; left > 0; left -= int64(len(buf)) {
			for j := 0; j+8 <= len(buf); j += 8 {
				v := rng.Uint64()
				for b := 0; b < 8; b++ {
					buf[j+b] = byte(v >> (8 * b))
				}
			}
			if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				return err
			}
		}
		f.Close()
		random -= n
	}
	return nil
}
