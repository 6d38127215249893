package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// RegistryModule is the pinned stock CNCF distribution registry that
// StartDistributionProcess runs; `make tools` installs exactly this.
const RegistryModule = "github.com/distribution/distribution/v3/cmd/registry@v3.1.2"

// processReadyTimeout bounds how long a registry process may take to
// answer /v2/ after it starts.
const processReadyTimeout = 30 * time.Second

// StartDistributionProcess runs the stock `registry` binary (found by
// FindTool, installed by `make tools`) as its own process: filesystem
// storage (opts.RootDir, or a temporary directory), plain HTTP on a free
// loopback port, and notifications to opts.NotifyURL with opts.NotifyHeaders.
// Timing that depends on the registry, such as a notification sent before
// the tag it names is linked, is then the shipped binary's, not an
// in-process handler's. It returns once /v2/ answers; Close kills the
// process and removes its files. TLS and basic auth are not offered here.
func StartDistributionProcess(opts DistributionOptions) (*Registry, error) {
	if opts.TLS || opts.Username != "" {
		return nil, errors.New("start registry process: TLS and basic auth are only offered in-process (StartDistribution)")
	}
	bin, err := FindTool("registry")
	if err != nil {
		return nil, fmt.Errorf("start registry process: %w (it installs %s)", err, RegistryModule)
	}
	tmp, err := os.MkdirTemp("", "mkt-registry-proc-*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Registry, error) {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start registry process: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		if addr, err = freeLoopbackAddr(); err != nil {
			return fail(err)
		}
	}
	root := opts.RootDir
	if root == "" {
		root = filepath.Join(tmp, "storage")
	}
	cfg, err := processConfig(addr, root, opts)
	if err != nil {
		return fail(err)
	}
	cfgPath := filepath.Join(tmp, "config.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return fail(err)
	}
	logPath := filepath.Join(tmp, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fail(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	reg := &Registry{Host: addr, PlainHTTP: true, Name: "distribution-process", tempDir: tmp}
	reg.stop = func() error {
		// Killed, not asked to drain: tests that stop a registry want it
		// gone, and a registry keeps undeliverable notifications queued.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		<-exited
		return nil
	}
	if err := waitReady(addr, exited); err != nil {
		reg.stop()
		log, _ := os.ReadFile(logPath)
		return fail(fmt.Errorf("%w\nregistry log:\n%s", err, log))
	}
	return reg, nil
}

// processConfig is the registry's config.yml: distribution's own YAML,
// so that defaults are the binary's, not this package's.
func processConfig(addr, root string, opts DistributionOptions) ([]byte, error) {
	level := "error"
	if opts.Log || os.Getenv("MKT_TESTENV_LOG") != "" {
		level = "info"
	}
	cfg := map[string]any{
		"version": "0.1",
		"log":     map[string]any{"level": level, "accesslog": map[string]any{"disabled": level == "error"}},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": root},
			"delete":      map[string]any{"enabled": true},
			"cache":       map[string]any{"blobdescriptor": "inmemory"},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
		"http": map[string]any{"addr": addr, "secret": "mkt-testenv"},
	}
	if opts.NotifyURL != "" {
		headers := map[string][]string{}
		for k, v := range opts.NotifyHeaders {
			headers[k] = v
		}
		cfg["notifications"] = map[string]any{"endpoints": []any{map[string]any{
			"name": "mkt", "url": opts.NotifyURL, "headers": headers,
			// Small, so that a test that makes the endpoint fail sees
			// retries within its bounds.
			"timeout": "2s", "threshold": 3, "backoff": "200ms",
		}}}
	}
	return yaml.Marshal(cfg)
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls GET /v2/ until it answers 200, the process exits or
// processReadyTimeout passes.
func waitReady(addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), processReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("registry at %s not ready after %s: %v", addr, processReadyTimeout, strings.TrimSpace(fmt.Sprint(last)))
		case <-poll.C:
		}
	}
}

// DistributionProcess returns a Main service starting a registry process
// into *reg.
func DistributionProcess(reg **Registry, opts DistributionOptions) func() (io.Closer, error) {
	return func() (io.Closer, error) {
		r, err := StartDistributionProcess(opts)
		*reg = r
		return r, err
	}
}
