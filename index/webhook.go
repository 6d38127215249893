package index

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
		Host string `json:"host"`
	} `json:"request"`
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
	Log      *slog.Logger
	Metrics  *Metrics // optional
	// Queue makes the webhook answer once a batch is durably queued; its
	// workers ingest. Without one, events are ingested before the answer.
	Queue *Queue
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
	if seen, err := h.Ingester.Store.EventSeen(ctx, e.ID); err != nil || seen {
		if seen {
			h.Metrics.event("duplicate")
		}
		return err
	}
	h.Metrics.event("received")
	if e.Action != "push" || e.Target.Tag == "" || e.Target.MediaType != ocispec.MediaTypeImageManifest {
		return nil
	}
	src := h.source(e.registryHost(), e.Target.Repository)
	if src == nil {
		return nil
	}
	// Ingest the digest the event names, never the tag: by the time the
	// event arrives the tag may name something else (a forced push), and
	// reading the tag would miss exactly the move that must be reported.
	ref := e.Target.Digest
	if tag := e.Target.Tag; strings.HasSuffix(tag, "."+artifact.SignatureTagSuffix) || strings.HasSuffix(tag, "."+artifact.AttestationTagSuffix) {
		// sha256-<hex>.sig → re-verify sha256:<hex>.
		ref = strings.Replace(strings.TrimSuffix(strings.TrimSuffix(tag, ".sig"), ".att"), "-", ":", 1)
	}
	if ref == "" {
		ref = e.Target.Tag
	}
	_, err := h.Ingester.Ingest(ctx, src, e.Target.Repository, ref)
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
	_, err = h.Ingester.Store.MarkEvent(ctx, e.ID)
	return err
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
