package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/store"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// AlertIngestFailed is raised when the queue gives up on an event: its
// artifact is invalid (a permanent error) or it kept failing for every
// attempt. The alert names the repository, the reference and the error.
const AlertIngestFailed = "ingest-failed"

// errTransient and errPermanent mark what another attempt may or cannot cure.
var (
	errTransient = errors.New("transient")
	errPermanent = errors.New("permanent")
)

// Transient marks err as worth another attempt later: the queue retries it
// with backoff instead of quarantining the event. The ingest wraps what it
// knows to be temporary with it, such as evidence a notification named but
// the registry has not linked yet.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (%w)", err, errTransient)
}

// Permanent marks err as one that no retry can cure (an artifact that
// breaks a rule, a name bound to another publisher): the queue quarantines
// the event at once, with an ingest-failed alert.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (%w)", err, errPermanent)
}

// IsTransient reports whether an ingest error is worth another attempt.
// Permanent are errors marked by Permanent, an invalid or unsafe artifact
// (artifact.ErrInvalidExtension, ErrUnsafeContent, ErrDigestMismatch,
// ErrNotExtension), a malformed reference or digest, and a registry's 400,
// 405, 413 or 422. Everything else is transient, what Transient marks and
// what nobody classified alike (a registry or store that fails, a timeout,
// a database busy): another attempt costs little, and the last one
// quarantines the event anyway.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errTransient) {
		return true
	}
	if errors.Is(err, errPermanent) ||
		errors.Is(err, artifact.ErrInvalidExtension) || errors.Is(err, artifact.ErrUnsafeContent) ||
		errors.Is(err, artifact.ErrDigestMismatch) || errors.Is(err, artifact.ErrNotExtension) ||
		errors.Is(err, errdef.ErrInvalidReference) || errors.Is(err, errdef.ErrInvalidDigest) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return false
		}
	}
	return true
}

// QueueOptions tune the ingest queue. The zero value means the defaults,
// which suit a production index; tests shorten the times.
// They are index.yaml's `queue:` section.
type QueueOptions struct {
	// Workers is how many events one replica ingests at once (default 64).
	// An ingest mostly waits for the registry, and a replica claims new
	// events at most once per PollInterval, so Workers/PollInterval caps a
	// replica's rate: 16 workers held the bench at 132 versions/s with the
	// CPU two-thirds idle; 48 and 64 reached 220 and 225 (docs/performance.md).
	Workers int `yaml:"workers"`
	// MaxAttempts is how often an event is tried before it is quarantined
	// (default 8: with the default backoff, about 2 minutes of waits).
	MaxAttempts int `yaml:"maxAttempts"`
	// Backoff is the wait before the first retry; each further retry waits
	// twice as long, up to MaxBackoff, with ±10% jitter (defaults 1 s, 2 min).
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"maxBackoff"`
	// AttemptTimeout bounds one ingest of one event (default 1 min).
	AttemptTimeout time.Duration `yaml:"attemptTimeout"`
	// RescueAfter is how long an event may stay claimed before another
	// replica runs it again: the claimant was killed (default 2 min; it must
	// exceed AttemptTimeout, or a live worker's event would run twice).
	RescueAfter time.Duration `yaml:"rescueAfter"`
	// PollInterval is how often a replica looks for events another replica
	// queued (default 100 ms); events a replica queues itself start at once.
	PollInterval time.Duration `yaml:"pollInterval"`
	// ID names this replica in the queue's tables (default: River's own).
	ID string `yaml:"-"`
	// Log receives retries and quarantines (default slog.Default()).
	Log *slog.Logger `yaml:"-"`
	// Subscriptions, when set, are delivered by the same queue (their own
	// River queue, workers and backoff); NewQueue connects them to it.
	Subscriptions *Subscriptions `yaml:"-"`
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Minute
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = time.Minute
	}
	if o.RescueAfter <= o.AttemptTimeout {
		o.RescueAfter = 2 * o.AttemptTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// ingestQueue is the River queue name the index's events go to.
const ingestQueue = "mkt_ingest"

// ingestArgs is one queued notification event. River keeps at most one job
// per event id (unique by EventID) while it is queued, running or done, so
// a batch delivered again adds nothing.
//
// Generation is the event's evidence generation, taken as the event is
// queued, in the batch's order: the ingest writes with it, so of two
// events about one version the later one's evidence stands, whichever job
// runs or finishes first (docs/index.md, "Ingest ordering"). It is no part
// of the unique key. 0 (a job queued before generations): the ingest takes
// one when it starts.
type ingestArgs struct {
	EventID    string `json:"eventId" river:"unique"`
	Event      Event  `json:"event"`
	Generation int64  `json:"generation,omitempty"`
}

func (ingestArgs) Kind() string { return "mkt_ingest_event" }

func (ingestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: ingestQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Queue is the durable ingest queue: the webhook queues each notification
// batch in one transaction and answers, and workers (on every replica that
// shares the database) ingest the events with retries and backoff. An event
// that fails for good is quarantined with an ingest-failed alert; it never
// holds up the others. It is River (riverqueue.com) over the store's own
// database: SQLite through River's SQLite driver, PostgreSQL through its
// database/sql driver on the store's pgx connections.
type Queue struct {
	hook   *Webhook
	st     store.QueueStore
	db     *sql.DB
	driver riverdriver.Driver[*sql.Tx]
	opts   QueueOptions
	client *river.Client[*sql.Tx]
}

// NewQueue prepares the queue of hook's events in st; Start runs it. The
// store must be one of the SQL stores (both are), whose open has created
// the queue's tables.
func NewQueue(st store.Store, hook *Webhook, opts QueueOptions) (*Queue, error) {
	qs, ok := st.(store.QueueStore)
	if !ok {
		return nil, fmt.Errorf("ingest queue: the store (%T) cannot hold a queue; use sqlite:// or postgres://", st)
	}
	q := &Queue{hook: hook, st: qs, opts: opts.withDefaults()}
	var dialect string
	q.db, dialect = qs.QueueDB()
	switch dialect {
	case "sqlite":
		q.driver = riversqlite.New(q.db)
	case "postgres":
		q.driver = riverdatabasesql.New(q.db)
	default:
		return nil, fmt.Errorf("ingest queue: no queue driver for a %s store", dialect)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &ingestWorker{q: q}); err != nil {
		return nil, fmt.Errorf("ingest queue: %w", err)
	}
	o := q.opts
	queues := map[string]river.QueueConfig{ingestQueue: {MaxWorkers: o.Workers}}
	retry := retryPolicy{ingest: backoff{first: o.Backoff, max: o.MaxBackoff}}
	if s := o.Subscriptions; s != nil {
		if err := river.AddWorkerSafely(workers, &deliveryWorker{s: s}); err != nil {
			return nil, fmt.Errorf("ingest queue: %w", err)
		}
		d := s.Options.withDefaults()
		queues[deliverQueue] = river.QueueConfig{MaxWorkers: d.Workers}
		retry.deliver = backoff{first: d.Backoff, max: d.MaxBackoff}
	}
	client, err := river.NewClient(q.driver, &river.Config{
		ID:                   o.ID,
		Queues:               queues,
		Workers:              workers,
		MaxAttempts:          o.MaxAttempts,
		RetryPolicy:          retry,
		JobTimeout:           o.AttemptTimeout,
		RescueStuckJobsAfter: o.RescueAfter,
		// At most one fetch per PollInterval: under load one fetch claims
		// many events, and a fetch is River's dearest statement (a third of
		// the queue's CPU on SQLite, measured, most of it parsing SQL).
		FetchCooldown:     o.PollInterval,
		FetchPollInterval: o.PollInterval,
		Logger:            slog.New(warnings{o.Log.Handler()}).With("component", "ingest-queue"),
		// Quarantined events stay visible (and deduplicated) for a month.
		CancelledJobRetentionPeriod: 30 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest queue: %w", err)
	}
	q.client = client
	if o.Subscriptions != nil {
		o.Subscriptions.client = client
	}
	return q, nil
}

// Start runs the workers until Stop. The queue accepts events as soon as
// NewQueue returns; Start only makes this replica work on them.
func (q *Queue) Start(ctx context.Context) error {
	// River stops abruptly when its start context ends; Stop is the way
	// to end it, so it is detached from ctx's cancellation.
	if err := q.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start the ingest queue: %w", err)
	}
	return nil
}

// Stop stops fetching events and waits for the running ones to finish, or
// until ctx ends, when their ingests are cancelled (they are retried, here
// or on another replica). The store must stay open until Stop returns.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err != nil && ctx.Err() != nil {
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = q.client.StopAndCancel(hard)
	}
	if err != nil {
		return fmt.Errorf("stop the ingest queue: %w", err)
	}
	return nil
}

// Enqueue queues the events worth ingesting, all or none, in one
// transaction; when it returns nil they are durable. Events already queued
// (a redelivered batch) are not queued again.
func (q *Queue) Enqueue(ctx context.Context, events []Event) (int, error) {
	params := make([]river.InsertManyParams, 0, len(events))
	for _, e := range events {
		if queued(e) {
			params = append(params, river.InsertManyParams{Args: ingestArgs{EventID: e.ID, Event: e}})
		}
	}
	if len(params) == 0 {
		return 0, nil
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("queue %d events: %w", len(params), err)
	}
	defer tx.Rollback()
	// Numbered in the batch's order, which is the registry's: a registry
	// sends an endpoint's batches one at a time, so a later push's event
	// gets a higher generation than an earlier one's on any replica.
	gens, err := q.st.GenerationsTx(ctx, tx, len(params))
	if err != nil {
		return 0, fmt.Errorf("queue %d events: %w", len(params), err)
	}
	for i := range params {
		a := params[i].Args.(ingestArgs)
		a.Generation = gens[i]
		params[i].Args = a
	}
	if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
		return 0, fmt.Errorf("queue %d events: %w", len(params), err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("queue %d events: commit: %w", len(params), err)
	}
	return len(params), nil
}

// queued reports whether an event can make the index ingest anything: a
// pushed manifest. Pulls (one per manifest the index itself reads) and blob
// pushes are not queued at all.
func queued(e Event) bool {
	if e.Action != "push" {
		return false
	}
	switch e.Target.MediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// ingestWorker runs Webhook.handle for one queued event.
type ingestWorker struct {
	river.WorkerDefaults[ingestArgs]
	q *Queue
}

func (w *ingestWorker) Work(ctx context.Context, job *river.Job[ingestArgs]) error {
	return w.q.process(withGeneration(ctx, job.Args.Generation), job.Args.Event, job.Attempt, job.MaxAttempts)
}

// process ingests e. A transient error is returned for a retry while
// attempts remain; a permanent error, or a transient one on the last
// attempt, quarantines the event and cancels its job.
func (q *Queue) process(ctx context.Context, e Event, attempt, maxAttempts int) error {
	err := q.hook.handle(store.WithEvent(ctx, e.ID), e)
	if err == nil {
		return nil
	}
	log := q.opts.Log.With("event", e.ID, "repository", e.Target.Repository, "tag", e.Target.Tag, "digest", e.Target.Digest)
	if IsTransient(err) && attempt < maxAttempts {
		log.Warn("ingest failed; will retry", "attempt", attempt, "of", maxAttempts, "error", err)
		q.hook.Metrics.ingest("queue", "retried", e.Timestamp)
		return err
	}
	if q.st == nil { // an inline Webhook on a store that keeps no alerts
		return err
	}
	why := "a permanent error"
	if IsTransient(err) {
		why = fmt.Sprintf("%d attempts", attempt)
	}
	a, qerr := q.st.Quarantine(ctx, e.ID, q.alert(e, why, err))
	if qerr != nil {
		// The store is unreachable: try the quarantine again later,
		// without spending an attempt.
		log.Error("cannot quarantine the event", "error", qerr)
		return river.JobSnooze(q.opts.Backoff)
	}
	q.hook.Metrics.ingest("queue", "quarantined", e.Timestamp)
	if a != nil {
		log.Error("ingest failed; event quarantined", "after", why, "error", err)
	}
	return river.JobCancel(err)
}

// alert describes an event the queue gives up on.
func (q *Queue) alert(e Event, why string, err error) *store.Alert {
	tenant, repository := "", e.Target.Repository
	if src := q.hook.source(e.registryHost(), e.Target.Repository); src != nil {
		tenant = src.Tenant
		repository = src.Registry + "/" + e.Target.Repository
	}
	ref := e.Target.Tag
	if ref == "" {
		ref = e.Target.Digest
	}
	return &store.Alert{
		Tenant: tenant, Type: AlertIngestFailed, Name: e.Target.Repository, Version: ref,
		Repository: repository, NewDigest: e.Target.Digest,
		Message: fmt.Sprintf("%s:%s (%s) was not ingested after %s: %v; fix the artifact and push it again",
			repository, ref, e.Target.Digest, why, err),
	}
}

// retryPolicy is the queue's: each kind of job backs off its own way
// (deliveries wait longer, for a receiver that is down for a while).
type retryPolicy struct{ ingest, deliver backoff }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	if job.Kind == (deliveryArgs{}).Kind() && p.deliver.first > 0 {
		return p.deliver.NextRetry(job)
	}
	return p.ingest.NextRetry(job)
}

// backoff is the queue's retry policy: first, then doubling up to max,
// with ±10% jitter so that events that failed together spread out.
type backoff struct{ first, max time.Duration }

func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.first
	for i := 1; i < job.Attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	d += time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return time.Now().Add(d)
}

// describe names an event for logs and errors.
func describe(e Event) string {
	ref := e.Target.Tag
	if ref == "" {
		ref = e.Target.Digest
	}
	return strings.TrimSuffix(e.Target.Repository+":"+ref, ":")
}

// inline is a queue-less processor for a Webhook without a Queue: the same
// outcome per event, run in the request.
func (h *Webhook) inline() *Queue {
	qs, _ := h.events().(store.QueueStore) // for quarantine alerts; both SQL stores are one
	return &Queue{hook: h, st: qs, opts: QueueOptions{Log: h.Log}.withDefaults()}
}

// warnings passes on River's warnings and errors only: its info lines
// (job counts every few seconds, starts and stops) would drown the index's.
type warnings struct{ slog.Handler }

func (w warnings) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}

func (w warnings) WithAttrs(as []slog.Attr) slog.Handler { return warnings{w.Handler.WithAttrs(as)} }
func (w warnings) WithGroup(g string) slog.Handler       { return warnings{w.Handler.WithGroup(g)} }

// Pending counts the events queued and not yet ingested or quarantined,
// on every replica: the backlog (what /metrics or a bench waits on).
func (q *Queue) Pending(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE queue = '`+ingestQueue+`'
		AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count queued events: %w", err)
	}
	return n, nil
}
