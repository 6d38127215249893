package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
)

// Server is a running index: its store, the webhook and the API behind one
// handler, and the crawler reconciling every source at its interval.
type Server struct {
	Config  *Config
	Store   store.Store
	API     *API
	Webhook *Webhook
	Crawler *Crawler
	// Queue holds the webhook's events until its workers ingest them;
	// Serve runs it. To tune it, replace it and Webhook.Queue with one
	// from NewQueue before Serve.
	Queue   *Queue
	Metrics *Metrics
	Log     *slog.Logger
	// ControlRefresh is how often the policies' control lists are asked
	// for again (control.go); 0 means control.DefaultRefresh.
	ControlRefresh time.Duration

	control controlState
	// controlRemote reaches the control lists' registry.
	controlRemote remote.Options
}

// OpenStore opens the store the config names; a relative sqlite path is
// taken from the config file's directory.
func OpenStore(ctx context.Context, c *Config) (store.Store, error) {
	url := c.Store
	if p, ok := strings.CutPrefix(url, "sqlite://"); ok && p != ":memory:" && !filepath.IsAbs(p) {
		url = "sqlite://" + filepath.Join(c.Dir, p)
	}
	return store.Open(ctx, url)
}

// NewServer opens the store and loads the policy of c.
func NewServer(ctx context.Context, c *Config, ro remote.Options, log *slog.Logger) (*Server, error) {
	st, err := OpenStore(ctx, c)
	if err != nil {
		return nil, err
	}
	var pol *policy.Policy
	if c.Policy != "" {
		path := c.Policy
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.Dir, path)
		}
		if pol, err = policy.Load(ctx, path); err != nil {
			st.Close()
			return nil, err
		}
	}
	stages, err := LoadStagePolicies(ctx, c)
	if err != nil {
		st.Close()
		return nil, err
	}
	ing := &Ingester{Store: st, Policy: pol, Stages: stages, Publishers: c.Publishers, Remote: func(s *Source) remote.Options {
		o := ro
		o.PlainHTTP = s.PlainHTTP
		// The index's own pulls are told apart from usage by it (or by
		// its registry user, UsageConfig.IndexRegistryUsers).
		o.UserAgent = IndexUserAgent
		return o
	}}
	m := NewMetrics()
	hook := &Webhook{Secret: c.WebhookSecret, Sources: c.Sources, Ingester: ing, Events: st, Log: log, Metrics: m, Usage: c.Usage}
	qo := c.queueOptions(log)
	if len(c.Subscriptions) > 0 {
		dl, _ := st.(store.DeadLetterStore) // both SQL stores are one
		ing.Subscriptions = &Subscriptions{List: c.Subscriptions, Operator: c.Operator, Source: c.PublicURL, Options: c.Delivery,
			DeadLetters: dl, Log: log}
		qo.Subscriptions = ing.Subscriptions
	}
	if hook.Queue, err = NewQueue(st, hook, qo); err != nil {
		st.Close()
		return nil, err
	}
	m.queueBacklog(hook.Queue)
	srv := &Server{
		Config:  c,
		Store:   st,
		API:     &API{Store: st, Operator: c.Operator, PublicURL: c.PublicURL, Publishers: c.Publishers, Metering: st, Metrics: m, Log: log},
		Webhook: hook,
		Crawler: &Crawler{Ingester: ing, Store: st, Log: log, Metrics: m},
		Queue:   hook.Queue,
		Metrics: m,
		Log:     log,
	}
	srv.controlRemote = ro
	srv.control.pushed = make(chan struct{}, 1)
	hook.OnPush = srv.controlPushed
	srv.attachControl(pol, ro)
	for _, p := range stages {
		srv.attachControl(p, ro)
	}
	return srv, nil
}

// LoadStagePolicies loads the policy of every stage c defines, by stage
// name; one that does not load is an error naming the stage.
func LoadStagePolicies(ctx context.Context, c *Config) (map[string]*policy.Policy, error) {
	out := map[string]*policy.Policy{}
	for _, st := range c.Stages {
		p, err := policy.Load(ctx, c.StagePolicyPath(st.Name))
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", st.Name, err)
		}
		out[st.Name] = p
	}
	return out, nil
}

// Handler serves the webhook at POST /api/v1/events/registry and the API
// everywhere else, logging each request.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/events/registry", s.Webhook)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.Handle("/", s.API.Handler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		setSecurityHeaders(rec.Header())
		mux.ServeHTTP(rec, r)
		route := r.Pattern // the innermost ServeMux pattern that matched
		if route == "" {
			route = "unmatched"
		}
		s.Metrics.observeRequest(route, rec.status, time.Since(start))
		s.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Serve serves on ln until ctx ends, then shuts down gracefully (in-flight
// requests get 10 seconds, running ingests 30 more) and closes the store.
// The queue's workers run from before the first request until after the
// last; the crawler runs beside the server. Serve owns both: the store
// closes only after the crawler has returned and the queue has stopped, so
// nothing uses it after Close.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln)
}

// serve is Serve with more background work (the policy watch) run, and
// waited for, like the crawler.
func (s *Server) serve(ctx context.Context, ln net.Listener, background ...func(context.Context)) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: orDefault(s.Config.ReadTimeout, DefaultReadTimeout), WriteTimeout: orDefault(s.Config.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout: orDefault(s.Config.IdleTimeout, DefaultIdleTimeout)}
	if s.Queue == nil { // a Server built without NewServer: the webhook ingests inline
		s.Queue = &Queue{}
	} else if err := s.Queue.Start(ctx); err != nil {
		ln.Close()
		s.Store.Close()
		return err
	}
	stopQueue := func() error {
		if s.Queue.client == nil {
			return nil
		}
		stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return s.Queue.Stop(stop)
	}
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	var bg sync.WaitGroup
	if s.Crawler != nil {
		bg.Go(func() { s.Crawler.Run(bgCtx, s.Config.Sources) })
	}
	for _, f := range background {
		bg.Go(func() { f(bgCtx) })
	}
	// stop ends the background work and the queue, in that order, and then
	// closes the store: every user of the store has returned by then.
	stop := func() error {
		stopBackground()
		bg.Wait()
		err := stopQueue()
		if cerr := s.Store.Close(); err == nil {
			err = cerr
		}
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stop()
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serr := stop(); err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// ListenAndServe listens on the configured address.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

func (s *Server) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.Config.Listen, err)
	}
	s.Log.Info("index listening", "addr", ln.Addr().String())
	return ln, nil
}
