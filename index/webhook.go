package index

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// maxEnvelopeSize bounds a notification body; distribution batches a few
// events of a few hundred bytes each.
const maxEnvelopeSize = 1 << 20

// Event is the part of a CNCF distribution notification event the index
// reads (registry/notifications: Envelope{events: [Event]}).
type Event struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host      string `json:"host"`
		Method    string `json:"method,omitempty"`
		UserAgent string `json:"useragent,omitempty"`
	} `json:"request"`
	// Actor is the registry user who made the request ("" anonymous): a
	// pull counts for the tenant it maps to (UsageConfig.RegistryUsers).
	Actor struct {
		Name string `json:"name,omitempty"`
	} `json:"actor"`
	Timestamp time.Time `json:"timestamp"`
}

// DecodeEnvelope reads a notification body: {"events":[…]}. It refuses
// what is not one, and events without an id or repository.
func DecodeEnvelope(r io.Reader) ([]Event, error) {
	var env struct {
		Events []Event `json:"events"`
	}
	dec := json.NewDecoder(io.LimitReader(r, maxEnvelopeSize+1))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("notification envelope: %w", err)
	}
	for i, e := range env.Events {
		if e.ID == "" || e.Target.Repository == "" {
			return nil, fmt.Errorf("notification event %d: no id or repository", i)
		}
	}
	return env.Events, nil
}

// registryHost is the registry an event is about: the host of the target
// URL distribution reports, else the request's Host.
func (e *Event) registryHost() string {
	if u, err := url.Parse(e.Target.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return e.Request.Host
}

// Webhook receives distribution's notifications at POST
// /api/v1/events/registry. It needs "Authorization: Bearer <secret>",
// records each event id once (duplicates are acknowledged and ignored) and
// ingests pushed version tags of configured sources. A pushed cosign .sig
// or .att tag re-ingests the version it belongs to.
type Webhook struct {
	Secret   string
	Sources  []Source
	Ingester *Ingester
	// Events records the events handled, so that a redelivery is not
	// ingested again; nil means the Ingester's store, which the SQL
	// stores can do.
	Events  EventStore
	Log     *slog.Logger
	Metrics *Metrics // optional
	// Queue makes the webhook answer once a batch is durably queued; its
	// workers ingest. Without one, events are ingested before the answer.
	Queue *Queue
	// Usage says whose usage a pull is; UsageEvents records the pulls
	// (nil: the Ingester's store, which the SQL stores can do).
	Usage       UsageConfig
	UsageEvents PullUsageStore
	// OnPush, when set, is told the repository of every push in an
	// authenticated notification, before the batch is queued: the server
	// uses it to read a control list as soon as one is pushed. It must
	// not block.
	OnPush func(repository string)
}

// events is Events, or the Ingester's store by default.
func (h *Webhook) events() EventStore {
	if h.Events != nil {
		return h.Events
	}
	if es, ok := h.Ingester.Store.(EventStore); ok {
		return es
	}
	return noEvents{}
}

// noEvents is the event store of a webhook configured without one: every
// call fails, saying so.
type noEvents struct{}

var errNoEvents = errors.New("webhook: no Events store, and the ingester's store keeps no events")

func (noEvents) EventSeen(context.Context, string) (bool, error) { return false, errNoEvents }
func (noEvents) MarkEvent(context.Context, string) (bool, error) { return false, errNoEvents }

// EventStore is what the webhook keeps of events: their ids, once handled.
type EventStore interface {
	EventSeen(ctx context.Context, id string) (bool, error)
	MarkEvent(ctx context.Context, id string) (bool, error)
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || h.Secret == "" || subtle.ConstantTimeCompare([]byte(token), []byte(h.Secret)) != 1 {
		h.Metrics.event("unauthorized")
		http.Error(w, "missing or wrong bearer secret", http.StatusUnauthorized)
		return
	}
	events, err := DecodeEnvelope(r.Body)
	if err != nil {
		h.Metrics.event("malformed")
		http.Error(w, fmt.Sprintf("malformed notification: %v; the index takes CNCF distribution's envelope, {\"events\":[{\"id\":…,\"action\":…,\"target\":{…}}]}", err), http.StatusBadRequest)
		return
	}
	if h.OnPush != nil {
		for _, e := range events {
			if e.Action == "push" {
				h.OnPush(e.Target.Repository)
			}
		}
	}
	// Pulls are counted before the batch is queued: when counting fails
	// the registry sends the batch again, and what was counted then is
	// not counted twice.
	if err := h.recordPulls(r.Context(), events); err != nil {
		h.log().Error("cannot count pulls", "events", len(events), "error", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the usage store is unavailable; retry later", http.StatusServiceUnavailable)
		return
	}
	if h.Queue != nil {
		n, err := h.Queue.Enqueue(r.Context(), events)
		if err != nil {
			// Nothing was queued: the sender keeps the batch and retries.
			h.log().Error("cannot queue notification events", "events", len(events), "error", err)
			w.Header().Set("Retry-After", "5")
			http.Error(w, "the ingest queue is unavailable; retry later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "queued %d of %d events\n", n, len(events))
		return
	}
	// Without a queue (tests, tools) the events are ingested here, with
	// the queue's outcome: a permanent failure is quarantined, a transient
	// one makes the sender retry the batch (done events are skipped then).
	var failed []string
	for _, e := range events {
		if err := h.inline().process(r.Context(), e, 1, 2); err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s): %v", e.ID, describe(e), err))
		}
	}
	if len(failed) > 0 {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "retry later: "+strings.Join(failed, "\n"), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *Webhook) handle(ctx context.Context, e Event) error {
	if seen, err := h.events().EventSeen(ctx, e.ID); err != nil || seen {
		if seen {
			h.Metrics.event("duplicate")
		}
		return err
	}
	h.Metrics.event("received")
	ref, o, ok, err := h.target(ctx, e)
	if err != nil || !ok {
		if err == nil {
			_, err = h.events().MarkEvent(ctx, e.ID)
		}
		return err
	}
	src := h.source(e.registryHost(), e.Target.Repository)
	_, err = h.ingestEvidence(ctx, src, e.Target.Repository, ref, o)
	switch {
	case IsNotExtension(err):
		h.log().Info("skipped: not an extension", "repository", e.Target.Repository, "ref", ref)
		h.Metrics.ingest("webhook", "skipped", e.Timestamp)
		err = nil
	case err != nil:
		h.Metrics.ingest("webhook", "failed", e.Timestamp)
		return err
	default:
		h.Metrics.ingest("webhook", "stored", e.Timestamp)
	}
	// Marked only once ingested, so a failed event is retried.
	_, err = h.events().MarkEvent(ctx, e.ID)
	return err
}

// target says what an event makes the index ingest: the digest it names
// for a version tag (never the tag: by the time the event arrives the tag
// may name something else, a forced push, and reading it would miss
// exactly the move that must be reported); for an evidence tag, the
// artifact it is about, with the evidence manifest the event names read by
// digest (distribution notifies before it links the tag, so the tag may
// not name it yet); for a manifest pushed by digest with a subject (an OCI
// 1.1 referrer, `mkt sign --referrers`), its subject, with it as a
// referrer. ok is false for events that change nothing the index shows.
func (h *Webhook) target(ctx context.Context, e Event) (ref string, o signing.CollectOptions, ok bool, err error) {
	t := e.Target
	if e.Action != "push" || h.source(e.registryHost(), t.Repository) == nil {
		return "", o, false, nil
	}
	subject, kind := evidenceTag(t.Tag)
	switch {
	case kind == badEvidence:
		h.log().Info("skipped: a tag shaped like evidence but malformed is not evidence", "repository", t.Repository, "tag", t.Tag)
		return "", o, false, nil
	case kind == refsEvidence && t.MediaType == ocispec.MediaTypeImageIndex,
		(kind == sigEvidence || kind == attEvidence) && t.MediaType == ocispec.MediaTypeImageManifest:
		kind.set(&o.Known, t.Digest)
		return subject.String(), o, true, nil
	case t.MediaType != ocispec.MediaTypeImageManifest:
		return "", o, false, nil
	case t.Tag != "" && kind == notEvidence:
		if t.Digest == "" {
			return t.Tag, o, true, nil
		}
		return t.Digest, o, true, nil
	case t.Tag == "" && t.Digest != "":
		subject, err := h.subjectOf(ctx, e)
		if err != nil || subject == "" {
			return "", o, false, err
		}
		o.Referrers = []string{t.Digest}
		return subject, o, true, nil
	}
	return "", o, false, nil
}

// maxReferrerManifest bounds the manifest read to find a subject.
const maxReferrerManifest = 4 << 20

// subjectOf reads the manifest an untagged push names (one GET) and
// returns its subject's digest, "" when it has none.
func (h *Webhook) subjectOf(ctx context.Context, e Event) (string, error) {
	src := h.source(e.registryHost(), e.Target.Repository)
	conn, err := h.Ingester.conn(src)
	if err != nil {
		return "", err
	}
	ref := src.Registry + "/" + e.Target.Repository + "@" + e.Target.Digest
	repo, err := artifact.NewRepository(ref, conn.remote)
	if err != nil {
		return "", err
	}
	_, raw, err := oras.FetchBytes(ctx, repo, e.Target.Digest, oras.FetchBytesOptions{MaxBytes: maxReferrerManifest})
	if err != nil {
		return "", fmt.Errorf("read %s for its subject: %w", ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		h.log().Info("skipped: pushed manifest is not JSON", "reference", ref, "err", err)
		return "", nil
	}
	if m.Subject == nil {
		return "", nil
	}
	return m.Subject.Digest.String(), nil
}

// evidenceRetries bound the re-reads of an evidence manifest an event
// named but the registry did not serve yet; then the event fails as
// transient, for the queue to retry later.
var evidenceRetries = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond}

// ingestEvidence ingests ref; when the event named an evidence manifest
// that the registry does not serve (yet), it reads again with backoff.
func (h *Webhook) ingestEvidence(ctx context.Context, src *Source, repository, ref string, o signing.CollectOptions) (*Ingested, error) {
	for attempt := 0; ; attempt++ {
		got, err := h.Ingester.IngestWith(ctx, src, repository, ref, o)
		if err != nil {
			return nil, err
		}
		missing := evidenceMissing(o, got.Evidence)
		if missing == "" {
			return got, nil
		}
		if attempt == len(evidenceRetries) {
			return got, Transient(fmt.Errorf("ingest %s/%s@%s: the registry does not serve the evidence manifest %s the notification named", src.Registry, repository, ref, missing))
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(evidenceRetries[attempt]):
		}
	}
}

// evidenceMissing names a manifest o asked for that the ingest did not
// read, "" when it read all.
func evidenceMissing(o signing.CollectOptions, got signing.Manifests) string {
	for _, p := range [][2]string{{o.Known.Signatures, got.Signatures}, {o.Known.Attestations, got.Attestations}, {o.Known.Referrers, got.Referrers}} {
		if p[0] != "" && p[0] != p[1] {
			return p[0]
		}
	}
	return ""
}

func (h *Webhook) source(registry, repository string) *Source {
	for i := range h.Sources {
		if h.Sources[i].Matches(registry, repository) {
			return &h.Sources[i]
		}
	}
	return nil
}

func (h *Webhook) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
