package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Usage event types (DESIGN §6.4), the CloudEvents type attribute of an
// install report and of a seat report.
const (
	UsageInstallType = "io.connectsoft.marketplace.install.v1"
	UsageSeatsType   = "io.connectsoft.marketplace.seats.v1"
)

// Content types of POST /api/v1/usage/events: one CloudEvent in structured
// mode, or a batch of them.
const (
	CloudEventContentType      = "application/cloudevents+json"
	CloudEventBatchContentType = "application/cloudevents-batch+json"
)

// UsageData is the data of an install or seat report.
type UsageData struct {
	// Name is the extension's whole name, publisher/name.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Digest, when given, must be the digest the index holds for the
	// version: a report about other bytes is refused.
	Digest string `json:"digest,omitempty"`
	// Quantity is how many installs an install report counts (default 1).
	Quantity int64 `json:"quantity,omitempty"`
	// Seats is how many seats a seat report says are in use (required for
	// one, 0 allowed).
	Seats *int64 `json:"seats,omitempty"`
}

// UsageEvent is a CloudEvents 1.0 event in structured JSON mode, as mkt,
// marketplace.Install and Factory send it. It is a small struct rather
// than the CloudEvents SDK's event because mkt links this package and the
// SDK would bring a JSON library of its own and its start-up cost into it;
// the index decodes with the SDK, and a test round-trips this encoding
// through the SDK's decoder.
type UsageEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time,omitzero"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	Data            UsageData `json:"data"`
}

// NewInstallEvent is the report of one install of name@version (digest
// optional) by source (a URI naming the sender, e.g. mkt://host), with a
// fresh random id and the time now.
func NewInstallEvent(source, name, version, digest string) UsageEvent {
	return newUsageEvent(source, UsageInstallType, UsageData{Name: name, Version: version, Digest: digest, Quantity: 1})
}

// NewSeatsEvent is the report that seats seats of name@version are in use.
func NewSeatsEvent(source, name, version string, seats int64) UsageEvent {
	return newUsageEvent(source, UsageSeatsType, UsageData{Name: name, Version: version, Seats: &seats})
}

func newUsageEvent(source, typ string, d UsageData) UsageEvent {
	return UsageEvent{SpecVersion: "1.0", ID: NewEventID(), Source: source, Type: typ, Time: time.Now().UTC(),
		DataContentType: "application/json", Data: d}
}

// NewEventID is a random event id (128 bits, hex): a sender that retries
// sends the same id again, and the index counts it once.
func NewEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Outcomes of one reported event.
const (
	UsageAccepted  = "accepted"
	UsageDuplicate = "duplicate"
	UsageRefused   = "refused"
)

// UsageEventResult is what the index did with one event of a report.
type UsageEventResult struct {
	// Index is the event's position in the batch (0 for a single event).
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Source string `json:"source,omitempty"`
	// Status is accepted, duplicate (counted before; nothing changed) or
	// refused.
	Status string `json:"status"`
	// Field names the attribute or data field a refusal is about
	// ("data.version").
	Field string       `json:"field,omitempty"`
	Error *ErrorDetail `json:"error,omitempty"`
}

// UsageReport is the answer to POST /api/v1/usage/events: a count per
// outcome and one result per event, in the order sent.
type UsageReport struct {
	Accepted   int                `json:"accepted"`
	Duplicates int                `json:"duplicates"`
	Refused    int                `json:"refused"`
	Events     []UsageEventResult `json:"events"`
}

// ReportUsage sends events as one batch (one event as a single
// CloudEvent). A batch of which some events are refused is no error: the
// report says which and why, and the others are counted. A batch refused
// whole (every event, a bad token, a malformed body) is an *APIError.
func (c *Client) ReportUsage(ctx context.Context, events []UsageEvent) (*UsageReport, error) {
	var body []byte
	var err error
	ctype := CloudEventBatchContentType
	if len(events) == 1 {
		ctype = CloudEventContentType
		body, err = json.Marshal(events[0])
	} else {
		body, err = json.Marshal(events)
	}
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	endpoint := strings.TrimSuffix(c.URL, "/") + "/api/v1/usage/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", c.URL, err)
	}
	req.Header.Set("Content-Type", ctype)
	var rep UsageReport
	if err := c.do(req, endpoint, &rep, http.StatusAccepted, http.StatusMultiStatus); err != nil {
		return nil, err
	}
	return &rep, nil
}

// UsageQuery is one GET /api/v1/usage; empty fields do not filter.
type UsageQuery struct {
	Publisher string
	// Name is publisher/name.
	Name   string
	Tenant string
	// From (inclusive) and To (exclusive) are dates, 2026-11-01.
	From, To string
	// Granularity is day (the default) or month.
	Granularity string
}

func (q UsageQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"publisher": q.Publisher, "name": q.Name, "tenant": q.Tenant, "from": q.From, "to": q.To, "granularity": q.Granularity} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// UsageRow is the usage of one version by one tenant in one period.
type UsageRow struct {
	// Period is the day (2026-11-29) or month (2026-11).
	Period    string `json:"period"`
	Tenant    string `json:"tenant"`
	Publisher string `json:"publisher"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Pulls     int64  `json:"pulls"`
	Installs  int64  `json:"installs"`
	// Seats is the largest seat count reported in the period.
	Seats int64 `json:"seats"`
	// Events is how many events were counted, of every type.
	Events int64 `json:"events"`
}

// UsagePage is the answer to GET /api/v1/usage.
type UsagePage struct {
	Granularity string     `json:"granularity"`
	Rows        []UsageRow `json:"rows"`
}

// Usage reads the usage the token may see (a tenant its own; a publisher
// also its extensions' usage by every tenant; the operator all).
func (c *Client) Usage(ctx context.Context, q UsageQuery) (*UsagePage, error) {
	var p UsagePage
	if err := c.get(ctx, "/api/v1/usage", q.values(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UsageCSV streams the usage q selects as CSV (Accept: text/csv) into w.
func (c *Client) UsageCSV(ctx context.Context, q UsageQuery, w io.Writer) error {
	endpoint := strings.TrimSuffix(c.URL, "/") + "/api/v1/usage"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.values().Encode(), nil)
	if err != nil {
		return fmt.Errorf("index %s: %w", c.URL, err)
	}
	req.Header.Set("Accept", "text/csv")
	return c.do(req, endpoint, w, http.StatusOK)
}

// do sends req with the token and reads an answer of one of the ok
// statuses into out (a JSON value, or an io.Writer that takes the body as
// it is); any other status is an *APIError.
func (c *Client) do(req *http.Request, endpoint string, out any, ok ...int) error {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("index %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxAnswer)
	good := false
	for _, s := range ok {
		good = good || resp.StatusCode == s
	}
	if !good {
		var b ErrorBody
		json.NewDecoder(body).Decode(&b)
		e := b.Error
		if e.Code == "" {
			e.Code = CodeOf(resp.StatusCode)
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return &APIError{URL: endpoint, Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if w, isWriter := out.(io.Writer); isWriter {
		if _, err := io.Copy(w, body); err != nil {
			return fmt.Errorf("index %s: %w", endpoint, err)
		}
		return nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("index %s: unreadable answer: %w", endpoint, err)
	}
	return nil
}
