// Package testenv runs real registries and peers for tests and local trials:
// a CNCF distribution registry in-process (plain HTTP, or TLS with htpasswd
// basic auth, optionally sending its notifications to a URL), a
// go-containerregistry registry with the OCI referrers API, a fault proxy
// that breaks connections on purpose, and helpers that run the stock oras and
// cosign binaries. Only tests and `mkt dev` import it.
package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Drivers and auth are registered by import, as in the registry binary.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Registry is a registry serving on a loopback port.
type Registry struct {
	// Host is host:port, to put in references.
	Host string
	// PlainHTTP is true when the registry speaks HTTP, not HTTPS.
	PlainHTTP bool
	// CAFile is the PEM file of the CA that signed the TLS certificate.
	CAFile string
	// Username and Password are the basic-auth credentials, if any.
	Username, Password string
	// Referrers is true when the registry serves the OCI 1.1 referrers API.
	Referrers bool
	// Name says which implementation this is, for test names.
	Name string

	srv     *http.Server
	served  chan struct{} // closed when srv.Serve has returned, its listener closed
	stop    func() error  // a registry process: kills it
	tempDir string
}

// Ref joins the registry host and a repository[:tag|@digest].
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Close stops the server and removes its files. Requests in flight get a
// moment to finish; then connections are closed, since distribution can
// keep one marked active after answering a route it does not have (the
// referrers API), which would stall a graceful shutdown for its timeout.
// It returns once the port is free: a caller may listen on it again.
func (r *Registry) Close() error {
	if r.stop != nil {
		err := r.stop()
		os.RemoveAll(r.tempDir)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = r.srv.Close()
	}
	// Serve runs in its own goroutine; a Shutdown that comes before it
	// tracks the listener leaves the closing to Serve, so wait for it.
	<-r.served
	if r.tempDir != "" {
		os.RemoveAll(r.tempDir)
	}
	return err
}

// DistributionOptions configure StartDistribution. The zero value is an
// in-memory registry on plain HTTP without auth.
type DistributionOptions struct {
	// Addr to listen on; "" means 127.0.0.1 and a free port.
	Addr string
	// RootDir stores blobs on disk under this directory instead of memory.
	RootDir string
	// TLS serves HTTPS with a certificate from a fresh CA (see CAFile).
	TLS bool
	// Username and Password turn on htpasswd basic auth (needs TLS, as
	// distribution refuses basic auth over plain HTTP for real clients).
	Username, Password string
	// NotifyURL receives the registry's notification events.
	NotifyURL string
	// NotifyHeaders are sent with every notification (e.g. Authorization).
	NotifyHeaders http.Header
	// Log sends the registry's own logs to stderr.
	Log bool
}

// StartDistribution starts a CNCF distribution registry in this process.
func StartDistribution(opts DistributionOptions) (*Registry, error) {
	tmp, err := os.MkdirTemp("", "mkt-registry-*")
	if err != nil {
		return nil, err
	}
	reg := &Registry{Name: "distribution", PlainHTTP: !opts.TLS, tempDir: tmp}
	fail := func(err error) (*Registry, error) {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start distribution: %w", err)
	}
	quietLogs(opts.Log)

	cfg := &configuration.Configuration{Version: "0.1"}
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = "mkt-testenv"
	// The YAML parser defaults this to 1000; built in code it is 0, which
	// makes /v2/_catalog answer an empty list.
	cfg.Catalog.MaxEntries = 1000
	if opts.RootDir != "" {
		cfg.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": opts.RootDir}}
	} else {
		cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	}
	cfg.Storage["delete"] = configuration.Parameters{"enabled": true}
	// As distribution's shipped configurations have it: blob descriptors
	// cached in memory instead of read from storage on every request.
	cfg.Storage["cache"] = configuration.Parameters{"blobdescriptor": "inmemory"}
	cfg.Storage["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return fail(err)
		}
		htpasswd := filepath.Join(tmp, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return fail(err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "mkt-testenv", "path": htpasswd}}
		reg.Username, reg.Password = opts.Username, opts.Password
	}
	if opts.NotifyURL != "" {
		cfg.Notifications.Endpoints = []configuration.Endpoint{{
			Name: "mkt", URL: opts.NotifyURL, Headers: opts.NotifyHeaders,
			Timeout: 2 * time.Second, Threshold: 3, Backoff: 200 * time.Millisecond,
		}}
	}
	app := handlers.NewApp(context.Background(), cfg)
	var tlsCfg *tls.Config
	if opts.TLS {
		ca, err := NewCA()
		if err != nil {
			return fail(err)
		}
		if tlsCfg, err = ca.ServerTLS("127.0.0.1", "localhost"); err != nil {
			return fail(err)
		}
		reg.CAFile = filepath.Join(tmp, "ca.pem")
		if err := os.WriteFile(reg.CAFile, ca.CertPEM, 0o644); err != nil {
			return fail(err)
		}
	}
	if err := reg.serve(opts.Addr, app, tlsCfg); err != nil {
		return fail(err)
	}
	return reg, nil
}

// StartGGCR starts go-containerregistry's in-memory registry, which serves
// the OCI 1.1 referrers API that distribution lacks.
func StartGGCR() (*Registry, error) {
	reg := &Registry{Name: "ggcr", PlainHTTP: true, Referrers: true}
	h := ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	if err := reg.serve("", h, nil); err != nil {
		return nil, fmt.Errorf("start ggcr registry: %w", err)
	}
	return reg, nil
}

func (r *Registry) serve(addr string, h http.Handler, tlsCfg *tls.Config) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.Host = ln.Addr().String()
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	r.served = make(chan struct{})
	go func() {
		defer close(r.served)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("testenv: registry %s: %v", r.Host, err)
		}
	}()
	return nil
}

func quietLogs(verbose bool) {
	if verbose || os.Getenv("MKT_TESTENV_LOG") != "" {
		logrus.SetLevel(logrus.InfoLevel)
		logrus.SetOutput(os.Stderr)
		return
	}
	logrus.SetLevel(logrus.ErrorLevel)
	logrus.SetOutput(io.Discard)
}

// DockerConfig writes a docker config.json holding basic-auth credentials
// for the registry and returns its path, for clients that read credentials
// the way docker, oras and cosign do.
func (r *Registry) DockerConfig(dir string) (string, error) {
	path := filepath.Join(dir, "config.json")
	auth := ""
	if r.Username != "" {
		auth = fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Host, basicAuth(r.Username, r.Password))
	} else {
		auth = `{"auths":{}}`
	}
	return path, os.WriteFile(path, []byte(auth), 0o600)
}

func basicAuth(user, pass string) string {
	return strings.TrimSpace(b64(user + ":" + pass))
}

// Main is a package's TestMain body: it starts each service, runs the
// tests, and closes the services; a service that does not start fails the
// run with its error. Use it as os.Exit(testenv.Main(m, …)).
func Main(m interface{ Run() int }, services ...func() (io.Closer, error)) int {
	for _, start := range services {
		c, err := start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer c.Close()
	}
	return m.Run()
}

// Distribution returns a Main service starting a distribution registry
// into *reg.
func Distribution(reg **Registry, opts DistributionOptions) func() (io.Closer, error) {
	return func() (io.Closer, error) {
		r, err := StartDistribution(opts)
		*reg = r
		return r, err
	}
}
