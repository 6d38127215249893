package index

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Event types a subscription asks for (DESIGN §6.5, config `events:`). The
// CloudEvents type of each is CloudEventType's.
const (
	EventVersionPublished = "version.published" // a version ingested for the first time
	EventVersionYanked    = "version.yanked"    // its effective lifecycle became yanked
	EventReviewRevoked    = "review.revoked"    // it was reviewed and no longer is
	EventControlBlocked   = "control.blocked"   // the control list newly blocks it
	EventTagMoved         = "tag.moved"         // its version tag now names another digest
)

// EventTypes are the event types there are.
var EventTypes = []string{EventVersionPublished, EventVersionYanked, EventReviewRevoked, EventControlBlocked, EventTagMoved}

// CloudEventType is the CloudEvents type attribute of an event type:
// io.connectsoft.marketplace.version.published.v1 and so on, in the
// namespace of the usage events (DESIGN §6.4).
func CloudEventType(eventType string) string {
	return "io.connectsoft.marketplace." + eventType + ".v1"
}

// Subscription is one `subscriptions:` entry of index.yaml: where to
// deliver which events, and the secret their signatures are made with.
type Subscription struct {
	// Name identifies it in dead letters and logs; unique.
	Name string `yaml:"name"`
	// URL receives each event as an HTTP POST (http or https).
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of each body (SignatureHeader).
	Secret string `yaml:"secret"`
	// Events are the event types it wants; empty: all of them.
	Events []string `yaml:"events"`
	// Tenant, when set, limits it to events about versions this tenant may
	// see (its own, public ones, internal ones for the operator's tenant):
	// a subscription a tenant asked for learns nothing of another's
	// private extensions. Empty: every event (the operator's own).
	Tenant string `yaml:"tenant"`
}

func (s *Subscription) wants(eventType string) bool {
	return len(s.Events) == 0 || slices.Contains(s.Events, eventType)
}

// DeliveryOptions tune the deliveries (index.yaml `delivery:`); zero
// values mean the defaults.
type DeliveryOptions struct {
	// MaxAttempts is how often an event is sent before it becomes a dead
	// letter (default 16: with the default backoff, about 3 hours of
	// retries, so a receiver down for an afternoon misses nothing).
	MaxAttempts int `yaml:"maxAttempts"`
	// Backoff is the wait before the first retry; each further retry
	// waits twice as long, up to MaxBackoff, ±10% (defaults 5 s, 30 min).
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"maxBackoff"`
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration `yaml:"timeout"`
	// Workers is how many deliveries one replica runs at once (default 8).
	Workers int `yaml:"workers"`
}

func (o DeliveryOptions) withDefaults() DeliveryOptions {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 16
	}
	if o.Backoff <= 0 {
		o.Backoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	return o
}

// SignatureHeader carries the signature of a delivery's body:
// "sha256=" and the lowercase hex HMAC-SHA256 of the exact body bytes,
// keyed with the subscription's secret (as GitHub's X-Hub-Signature-256).
// A receiver computes the same over the body it read and compares in
// constant time (client.VerifySignature); the event id in the body lets
// it drop a redelivery.
const SignatureHeader = "X-Marketplace-Signature-256"

// Sign is the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// CloudEvent is an event as delivered: CloudEvents 1.0 in the structured
// JSON mode (Content-Type application/cloudevents+json).
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            EventData `json:"data"`
}

// EventData is what an event says about its version.
type EventData struct {
	Tenant     string `json:"tenant"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	Digest     string `json:"digest"`
	Repository string `json:"repository,omitempty"`
	Visibility string `json:"visibility,omitempty"`
	Lifecycle  string `json:"lifecycle,omitempty"`
	// OldDigest is the digest the index keeps when a tag moved (Digest is
	// the one the tag names now).
	OldDigest string `json:"oldDigest,omitempty"`
	// Reason says why (control.blocked: the control list entry's reason).
	Reason string `json:"reason,omitempty"`
	// quarantined: the version has not passed its stage's policy, so only
	// its own tenant's subscriptions (and those of no tenant) hear of it.
	quarantined bool
}

// eventID is deterministic: the same happening gives the same id on every
// replica and every retry of an ingest, so the queue keeps one delivery of
// it per subscriber and a receiver can drop what it has seen.
func eventID(eventType string, d *EventData, extra string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{eventType, d.Tenant, d.Name, d.Version, d.Digest, d.OldDigest, extra}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Subscriptions delivers events to the configured subscribers through the
// index's durable queue: each event becomes one job per subscriber, queued
// in the same transaction as the version write that caused it (an outbox,
// store.WriteHook), sent with its signature and retried with exponential
// backoff until the subscriber answers 2xx, or recorded as a dead letter
// after the last attempt. Each replica's queue works on the jobs of all.
type Subscriptions struct {
	List []Subscription
	// Operator is the operator's tenant (for Subscription.Tenant's
	// visibility rule).
	Operator string
	// Source is the CloudEvents source attribute: the index's public URL,
	// or "urn:connectsoft:marketplace:index" without one.
	Source  string
	Options DeliveryOptions
	// DeadLetters records what could not be delivered; the SQL stores.
	DeadLetters store.DeadLetterStore
	// HTTP sends the deliveries (default: a client with Options.Timeout).
	HTTP *http.Client
	Log  *slog.Logger

	client *river.Client[*sql.Tx] // set by NewQueue
}

// deliverQueue is the River queue name of the deliveries.
const deliverQueue = "mkt_deliver"

// deliveryArgs is one event for one subscriber. River keeps one job per
// subscriber and event id (unique by the two) while it is queued, running,
// done or dead, so an event emitted again is not delivered again.
type deliveryArgs struct {
	Subscription string          `json:"subscription" river:"unique"`
	EventID      string          `json:"eventId" river:"unique"`
	Type         string          `json:"type"`
	Subject      string          `json:"subject"`
	Event        json.RawMessage `json:"event"`
}

func (deliveryArgs) Kind() string { return "mkt_deliver_event" }

// happening is one event before it is addressed to subscribers.
type happening struct {
	typ  string
	data EventData
	// extra tells apart happenings of one type to one version (a control
	// list's sequence).
	extra string
}

// params are the delivery jobs of evs: one per event and subscriber that
// wants it and may see its version.
func (s *Subscriptions) params(evs []happening, now time.Time) ([]river.InsertManyParams, error) {
	o := s.Options.withDefaults()
	var out []river.InsertManyParams
	for _, e := range evs {
		ce := CloudEvent{SpecVersion: "1.0", ID: eventID(e.typ, &e.data, e.extra), Source: s.source(), Type: CloudEventType(e.typ),
			Subject: e.data.Name + "@" + e.data.Version, Time: now.UTC(), DataContentType: "application/json", Data: e.data}
		body, err := json.Marshal(ce)
		if err != nil {
			return nil, err
		}
		for _, sub := range s.List {
			if !sub.wants(e.typ) || !s.mayTell(&sub, &e.data) {
				continue
			}
			out = append(out, river.InsertManyParams{
				Args: deliveryArgs{Subscription: sub.Name, EventID: ce.ID, Type: ce.Type, Subject: ce.Subject, Event: body},
				InsertOpts: &river.InsertOpts{Queue: deliverQueue, MaxAttempts: o.MaxAttempts,
					UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueForever}},
			})
		}
	}
	return out, nil
}

// uniqueForever keeps a delivery unique in every state River allows a
// unique job to be kept in, dead (discarded, cancelled) included: an event
// is delivered at most once per subscriber as long as River keeps its job.
var uniqueForever = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateCompleted, rivertype.JobStatePending,
	rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateCancelled, rivertype.JobStateDiscarded}

func (s *Subscriptions) source() string {
	if s.Source != "" {
		return s.Source
	}
	return "urn:connectsoft:marketplace:index"
}

// mayTell applies a tenant subscription's visibility rule.
func (s *Subscriptions) mayTell(sub *Subscription, d *EventData) bool {
	if sub.Tenant == "" {
		return true
	}
	w := &catalog.Viewer{Tenant: sub.Tenant, Operator: sub.Tenant == s.Operator && s.Operator != ""}
	return w.CanSee(&store.Version{Tenant: d.Tenant, Visibility: d.Visibility, Quarantined: d.quarantined})
}

// onWrite is the store.WriteHook of ingests: it turns what a version write
// changed into events and queues their deliveries in the write's
// transaction.
func (s *Subscriptions) onWrite(ctx context.Context, tx *sql.Tx, w *store.Write) error {
	v := w.Version
	data := EventData{Tenant: v.Tenant, Name: v.Name, Version: v.Version, Digest: v.Digest, Repository: v.Repository,
		Visibility: v.Visibility, Lifecycle: v.Lifecycle, quarantined: v.Quarantined}
	var evs []happening
	switch {
	case w.Result.Created:
		evs = append(evs, happening{typ: EventVersionPublished, data: data})
		if v.Lifecycle == "yanked" {
			evs = append(evs, happening{typ: EventVersionYanked, data: data})
		}
	case w.Result.Updated && w.Before != nil:
		if w.Before.Quarantined && !v.Quarantined {
			// Released from quarantine: published for the subscriptions
			// that could not see it (the same event id, so one that was
			// told at creation is not told again).
			evs = append(evs, happening{typ: EventVersionPublished, data: data})
		}
		if v.Lifecycle == "yanked" && w.Before.Lifecycle != "yanked" {
			evs = append(evs, happening{typ: EventVersionYanked, data: data})
		}
		if w.Before.Reviewed && !v.Reviewed {
			evs = append(evs, happening{typ: EventReviewRevoked, data: data})
		}
	case w.Result.Moved && w.Result.Alert != nil:
		moved := data
		moved.OldDigest, moved.Lifecycle = w.Result.Alert.OldDigest, ""
		evs = append(evs, happening{typ: EventTagMoved, data: moved})
	}
	if len(evs) == 0 {
		return nil
	}
	params, err := s.params(evs, time.Now())
	if err != nil || len(params) == 0 {
		return err
	}
	if s.client == nil {
		return errors.New("subscriptions: no queue (NewQueue with QueueOptions.Subscriptions)")
	}
	if _, err := s.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue %d deliveries: %w", len(params), err)
	}
	return nil
}

// BlockedVersion is a version the control list newly blocks, for
// ControlBlocked.
type BlockedVersion struct {
	Tenant, Name, Version, Digest, Repository, Visibility string
	// Reason is the control list entry's reason.
	Reason string
	// Quarantined is the version's quarantine (store.Version's): only its
	// own tenant's subscriptions hear of a quarantined version.
	Quarantined bool
	// Sequence is the control list's sequence number: a version blocked,
	// unblocked and blocked again by a later list is told again.
	Sequence int64
}

// ControlBlocked queues control.blocked events for versions a control list
// newly blocks. It is the hook the control list's ingest (issue 13's kill
// switch) calls once per list it applies; calling it again for the same
// list and versions queues nothing new (the event ids are deterministic).
func (s *Subscriptions) ControlBlocked(ctx context.Context, vs []BlockedVersion) error {
	if s == nil || len(vs) == 0 {
		return nil
	}
	evs := make([]happening, len(vs))
	for i, v := range vs {
		evs[i] = happening{typ: EventControlBlocked, extra: fmt.Sprint(v.Sequence), data: EventData{Tenant: v.Tenant, Name: v.Name, Version: v.Version,
			Digest: v.Digest, Repository: v.Repository, Visibility: v.Visibility, Lifecycle: "blocked", Reason: v.Reason, quarantined: v.Quarantined}}
	}
	params, err := s.params(evs, time.Now())
	if err != nil || len(params) == 0 {
		return err
	}
	if s.client == nil {
		return errors.New("subscriptions: no queue (NewQueue with QueueOptions.Subscriptions)")
	}
	if _, err := s.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("queue %d control.blocked deliveries: %w", len(params), err)
	}
	return nil
}

// deliveryWorker sends one event to one subscriber.
type deliveryWorker struct {
	river.WorkerDefaults[deliveryArgs]
	s *Subscriptions
}

// Timeout bounds one attempt: the subscription's, plus a margin for the
// dead letter's write.
func (w *deliveryWorker) Timeout(*river.Job[deliveryArgs]) time.Duration {
	return w.s.Options.withDefaults().Timeout + 10*time.Second
}

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	s := w.s
	a := job.Args
	i := slices.IndexFunc(s.List, func(x Subscription) bool { return x.Name == a.Subscription })
	if i < 0 { // removed from the config since: nobody to deliver to
		return river.JobCancel(fmt.Errorf("subscription %q is no longer configured", a.Subscription))
	}
	sub := &s.List[i]
	err := s.deliver(ctx, sub, a.Event)
	if err == nil {
		return nil
	}
	log := s.log().With("subscription", sub.Name, "event", a.EventID, "type", a.Type, "subject", a.Subject)
	if job.Attempt < job.MaxAttempts {
		log.Warn("delivery failed; will retry", "attempt", job.Attempt, "of", job.MaxAttempts, "error", err)
		return err
	}
	if s.DeadLetters != nil {
		if _, derr := s.DeadLetters.AddDeadLetter(ctx, &store.DeadLetter{Subscription: sub.Name, EventID: a.EventID, Type: a.Type,
			Subject: a.Subject, URL: sub.URL, Attempts: job.Attempt, Error: err.Error(), Event: a.Event}); derr != nil {
			// The store is unreachable: try again later without spending
			// an attempt, so the dead letter is not lost.
			log.Error("cannot record the dead letter", "error", derr)
			return river.JobSnooze(s.Options.withDefaults().Backoff)
		}
	}
	log.Error("delivery failed for good; recorded as a dead letter", "attempts", job.Attempt, "error", err)
	return river.JobCancel(err)
}

// deliver POSTs body to sub with its signature; anything but 2xx fails.
func (s *Subscriptions) deliver(ctx context.Context, sub *Subscription, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", sub.URL, err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set(SignatureHeader, Sign(sub.Secret, body))
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: s.Options.withDefaults().Timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", sub.URL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("deliver to %s: %s %s", sub.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (s *Subscriptions) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// checkSubscriptions validates subscriptions: and delivery:.
func checkSubscriptions(c *Config, add func(field, format string, args ...any)) {
	names := map[string]bool{}
	for i, s := range c.Subscriptions {
		at := fmt.Sprintf("subscriptions[%d]", i)
		if s.Name == "" || names[s.Name] {
			add(at+".name", "required and unique")
		}
		names[s.Name] = true
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(at+".url", "%q: want an http:// or https:// URL", s.URL)
		}
		if len(s.Secret) < 16 {
			add(at+".secret", "required, at least 16 characters: receivers check each delivery's HMAC signature with it (use ${ENV} to keep it out of the file)")
		}
		for j, e := range s.Events {
			if !slices.Contains(EventTypes, e) {
				add(fmt.Sprintf("%s.events[%d]", at, j), "%q: want one of %s", e, strings.Join(EventTypes, ", "))
			}
		}
	}
	d := c.Delivery
	if d.MaxAttempts < 0 || d.Workers < 0 {
		add("delivery", "maxAttempts and workers: want positive numbers (or none for the defaults)")
	}
	for _, x := range []struct {
		field string
		d     time.Duration
	}{{"delivery.backoff", d.Backoff}, {"delivery.maxBackoff", d.MaxBackoff}, {"delivery.timeout", d.Timeout}} {
		if x.d < 0 {
			add(x.field, "%s: want a positive duration (or none for the default)", x.d)
		}
	}
}

// deadLetters: GET /api/v1/subscriptions/dead-letters, for the operator's
// admins only: a dead letter holds the event, which may be about any
// tenant's private version.
func (a *API) deadLetters(w http.ResponseWriter, r *http.Request) {
	viewer, tok, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if tok == nil {
		a.fail(w, &apiError{http.StatusUnauthorized, "dead letters need the operator's admin token"})
		return
	}
	if !viewer.Operator || !slices.Contains(tok.Roles, roleAdmin) {
		a.fail(w, &apiError{http.StatusForbidden, "dead letters are for the operator's admins"})
		return
	}
	ds, ok := a.Store.(store.DeadLetterStore)
	if !ok {
		a.fail(w, errors.New("dead letters: the store keeps none"))
		return
	}
	items, err := ds.DeadLetters(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	if items == nil {
		items = []*store.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}
