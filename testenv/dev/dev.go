package dev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
)

// Options configure Up. The zero value runs both services on free ports
// of 127.0.0.1, blobs in memory, the dev key in DefaultDir.
type Options struct {
	// Listen is the registry's address; "" picks a free port.
	Listen string
	// IndexListen is the index's address; "" picks a free port.
	IndexListen string
	// NoIndex runs the registry alone.
	NoIndex bool
	// RootDir stores blobs under this directory instead of memory.
	RootDir string
	// DevDir holds the dev key pair and policy, made once and reused so
	// that what was signed in an earlier session stays trusted; "" means
	// DefaultDir().
	DevDir string
	// AddrFile and IndexAddrFile, when set, receive the registry's
	// host:port and the index's URL once each listens (written whole, by
	// rename), for scripts that start Up in the background.
	AddrFile, IndexAddrFile string
	// Remote says how the index reaches the registry.
	Remote remote.Options
	// Log receives the index's logs; nil discards them.
	Log *slog.Logger
	// RegistryLog sends the registry's own logs to stderr.
	RegistryLog bool
	// Config, when set, is an index config (index.yaml) the index runs
	// instead of the dev one: its stages, sources, publishers, store and
	// policies, so that a staged setup (docs/phases.md) can be tried on
	// the embedded registry. Its listen address gives way to IndexListen;
	// its sources must name the embedded registry (Listen) to ingest it.
	// No dev key or dev policy is written.
	Config string
}

// Env is a running dev environment: what to point mkt at.
type Env struct {
	// Registry is the registry's host:port (plain HTTP).
	Registry string `json:"registry"`
	// Index is the index's base URL; "" with NoIndex.
	Index string `json:"index,omitempty"`
	// Key, PublicKey and Policy are the dev trust the index verifies
	// with (see index.DevTrust); "" with NoIndex.
	Key       string `json:"key,omitempty"`
	PublicKey string `json:"publicKey,omitempty"`
	Policy    string `json:"policy,omitempty"`
	// Config is the index config the index runs (Options.Config); ""
	// for the dev one.
	Config string `json:"config,omitempty"`

	ctx      context.Context
	cancel   context.CancelFunc
	reg      *testenv.Registry
	indexDir string
	serveErr chan error
}

// DefaultDir is where the dev key lives unless Options.DevDir says
// otherwise: the user's configuration directory, so that it survives
// reboots as the artifacts signed with it may (RootDir).
func DefaultDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mkt", "dev")
	}
	return filepath.Join(os.TempDir(), "mkt-dev")
}

// Up starts the registry and, unless NoIndex, the index, and returns once
// both listen. They run until ctx ends; Wait then stops them.
func Up(ctx context.Context, o Options) (_ *Env, err error) {
	if o.DevDir == "" {
		o.DevDir = DefaultDir()
	}
	if o.IndexListen == "" {
		o.IndexListen = "127.0.0.1:0"
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	env := &Env{ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			env.stop()
		}
	}()
	regOpts := testenv.DistributionOptions{Addr: o.Listen, RootDir: o.RootDir, Log: o.RegistryLog}
	var idxLn net.Listener
	raw := make([]byte, 16)
	rand.Read(raw)
	secret := hex.EncodeToString(raw)
	var conf *index.Config
	if o.Config != "" {
		if o.NoIndex {
			return nil, errors.New("dev up: an index config is for the index, which --no-index leaves out: give one or the other")
		}
		// Loaded before anything listens: a config that does not load
		// starts nothing.
		if conf, err = index.LoadConfig(o.Config); err != nil {
			return nil, err
		}
		if conf.WebhookSecret != "" {
			secret = conf.WebhookSecret
		}
		if env.Config, err = filepath.Abs(o.Config); err != nil {
			return nil, fmt.Errorf("index config: %w", err)
		}
	}
	if !o.NoIndex {
		if idxLn, err = net.Listen("tcp", o.IndexListen); err != nil {
			return nil, fmt.Errorf("index listen %s: %w", o.IndexListen, err)
		}
		defer func() {
			if err != nil {
				idxLn.Close()
			}
		}()
		regOpts.NotifyURL = "http://" + idxLn.Addr().String() + "/api/v1/events/registry"
		regOpts.NotifyHeaders = http.Header{"Authorization": {"Bearer " + secret}}
	}
	if env.reg, err = testenv.StartDistribution(regOpts); err != nil {
		return nil, err
	}
	env.Registry = env.reg.Host
	if idxLn != nil {
		env.Index = "http://" + idxLn.Addr().String()
		if conf == nil {
			trust, err := index.WriteDevTrust(o.DevDir)
			if err != nil {
				return nil, err
			}
			env.Key, env.PublicKey, env.Policy = trust.Key, trust.PublicKey, trust.Policy
			if env.indexDir, err = os.MkdirTemp("", "mkt-dev-index-*"); err != nil {
				return nil, fmt.Errorf("dev index directory: %w", err)
			}
			conf = index.DevConfig(env.Registry, env.indexDir, secret)
			conf.Policy, conf.PublicURL = trust.Policy, env.Index
		} else if err := readsRegistry(conf, o.Config, env.Registry); err != nil {
			return nil, err
		} else {
			conf.Listen, conf.WebhookSecret = idxLn.Addr().String(), secret
			if conf.PublicURL == "" {
				conf.PublicURL = env.Index
			}
		}
		s, err := index.NewServer(ctx, conf, o.Remote, log)
		if err != nil {
			return nil, err
		}
		env.serveErr = make(chan error, 1)
		// As mkt index serve: the policy watch reads a control list within
		// a second of its push, and refreshes it every minute.
		go func() { env.serveErr <- s.ServeWatchingPolicy(ctx, idxLn, nil) }()
	}
	for file, v := range map[string]string{o.AddrFile: env.Registry, o.IndexAddrFile: env.Index} {
		if file == "" || v == "" {
			continue
		}
		if err := writeWhole(file, v+"\n"); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// readsRegistry refuses an index config none of whose sources reads the
// embedded registry: its index would ingest nothing that is pushed to it.
func readsRegistry(c *index.Config, file, registry string) error {
	for _, s := range c.Sources {
		if s.Registry == registry {
			return nil
		}
	}
	return fmt.Errorf("index config %s: no source reads the embedded registry %s: set sources[].registry to it (and plainHTTP: true), or --listen to the address the sources name", file, registry)
}

// Wait blocks until the context given to Up ends, waits for the index to
// stop, and then stops the registry. It returns the index's error, if any.
func (e *Env) Wait() error {
	<-e.ctx.Done()
	err := e.stop()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// stop ends the index, waits for it, then closes the registry: the index
// never outlives what it ingests from.
func (e *Env) stop() error {
	e.cancel()
	var err error
	if e.serveErr != nil {
		err = <-e.serveErr
		e.serveErr = nil
	}
	if e.reg != nil {
		e.reg.Close()
	}
	if e.indexDir != "" {
		os.RemoveAll(e.indexDir)
	}
	return err
}

// writeWhole writes s to path by rename, so a reader never sees half of it.
func writeWhole(path, s string) error {
	if err := os.WriteFile(path+".tmp", []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", filepath.Clean(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
