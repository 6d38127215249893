package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/connectsoft/marketplace/index/client"
)

// Bounds of one usage report: a batch of up to maxUsageBatch events, the
// body at most maxUsageBody bytes.
const (
	maxUsageBatch = 10_000
	maxUsageBody  = 16 << 20
)

// maxClockSkew is how far in the future an event's time may be: a sender's
// clock a little ahead is accepted, a time tomorrow is refused.
const maxClockSkew = 5 * time.Minute

// UsageEventError refuses one event of a report: which one, which field,
// and why.
type UsageEventError struct {
	Index int
	ID    string
	// Field is the CloudEvents attribute or data field at fault, such as
	// "time" or "data.version".
	Field   string
	Message string
}

func (e *UsageEventError) Error() string {
	id := ""
	if e.ID != "" {
		id = fmt.Sprintf(" (id %s)", e.ID)
	}
	return fmt.Sprintf("event %d%s: %s: %s", e.Index, id, e.Field, e.Message)
}

// DecodedUsage is one event of a report as decoded: its CloudEvents
// envelope and data, or why it was refused (Err); the tenant, owner and
// version are the API's to settle.
type DecodedUsage struct {
	Index  int
	ID     string
	Source string
	// Type is store.UsageInstall or store.UsageSeats.
	Type string
	Time time.Time
	Data client.UsageData
	// Tenant is the tenant extension attribute, when the sender set one;
	// the API refuses it unless it is the token's.
	Tenant string
	Err    *UsageEventError
}

// DecodeUsageEvents reads a usage report: one CloudEvent in structured JSON
// mode (application/cloudevents+json) or a batch of them
// (application/cloudevents-batch+json). It fails whole only for a body
// that is no report at all; an event that is not a valid install or seat
// report is returned with its Err, and the others decode. now bounds the
// events' times (maxClockSkew).
func DecodeUsageEvents(contentType string, r io.Reader, now time.Time) ([]DecodedUsage, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, fmt.Errorf("Content-Type %q: %w", contentType, err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxUsageBody+1))
	if err != nil {
		return nil, fmt.Errorf("read the report: %w", err)
	}
	if len(raw) > maxUsageBody {
		return nil, fmt.Errorf("the report is larger than %d MiB; send smaller batches", maxUsageBody>>20)
	}
	var items []json.RawMessage
	switch mt {
	case client.CloudEventContentType:
		items = []json.RawMessage{raw}
	case client.CloudEventBatchContentType:
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("a %s body is a JSON array of CloudEvents: %w", client.CloudEventBatchContentType, err)
		}
		if len(items) > maxUsageBatch {
			return nil, fmt.Errorf("a batch holds at most %d events, this one %d; send smaller batches", maxUsageBatch, len(items))
		}
	default:
		return nil, errUnsupportedUsageType
	}
	out := make([]DecodedUsage, len(items))
	for i, item := range items {
		out[i] = decodeUsageEvent(i, item, now)
	}
	return out, nil
}

// errUnsupportedUsageType refuses a report in another media type (415).
var errUnsupportedUsageType = fmt.Errorf("Content-Type must be %s (one CloudEvent in structured mode) or %s (a batch)",
	client.CloudEventContentType, client.CloudEventBatchContentType)

// decodeUsageEvent decodes one event with the CloudEvents SDK (which checks
// the envelope: specversion, id, source, type, time) and then the data.
func decodeUsageEvent(i int, raw json.RawMessage, now time.Time) DecodedUsage {
	d := DecodedUsage{Index: i}
	refuse := func(field, format string, args ...any) DecodedUsage {
		d.Err = &UsageEventError{Index: i, ID: d.ID, Field: field, Message: fmt.Sprintf(format, args...)}
		return d
	}
	// The id, when there is one, names the event in a refusal of the rest.
	var head struct {
		ID     any `json:"id"`
		Source any `json:"source"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return refuse("event", "not a JSON object: %v", err)
	}
	d.ID, _ = head.ID.(string)
	d.Source, _ = head.Source.(string)
	var ev event.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return refuse(sdkField(err), "%v", sdkMessage(err))
	}
	if err := ev.Validate(); err != nil {
		return refuse(sdkField(err), "%v", sdkMessage(err))
	}
	d.ID, d.Source = ev.ID(), ev.Source()
	switch ev.SpecVersion() {
	case event.CloudEventsVersionV1:
	default:
		return refuse("specversion", "%q: want 1.0", ev.SpecVersion())
	}
	switch ev.Type() {
	case client.UsageInstallType:
		d.Type = "install"
	case client.UsageSeatsType:
		d.Type = "seats"
	default:
		return refuse("type", "%q: want %s or %s (pulls are counted from the registry's notifications)", ev.Type(), client.UsageInstallType, client.UsageSeatsType)
	}
	d.Time = ev.Time()
	switch {
	case d.Time.IsZero():
		d.Time = now
	case d.Time.After(now.Add(maxClockSkew)):
		return refuse("time", "%s is in the future (the index's clock says %s); send the time the install or count happened",
			d.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case d.Time.Year() < 2000:
		return refuse("time", "%s is before 2000", d.Time.UTC().Format(time.RFC3339))
	}
	if t, ok := ev.Extensions()["tenant"]; ok {
		d.Tenant = fmt.Sprint(t)
	}
	if ct := ev.DataContentType(); ct != "" && ct != "application/json" {
		return refuse("datacontenttype", "%q: want application/json", ct)
	}
	data := ev.Data()
	if len(data) == 0 {
		return refuse("data", "missing: want {\"name\": \"publisher/name\", \"version\": …}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d.Data); err != nil {
		field := "data"
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = "data." + strings.Trim(name, `"`)
			if field == "data.tenant" {
				return refuse(field, "an event cannot name its tenant: the index takes it from the token")
			}
			return refuse(field, "unknown field (data has name, version, digest, quantity and seats)")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = "data." + te.Field
		}
		return refuse(field, "%v", err)
	}
	u := &d.Data
	switch {
	case u.Name == "":
		return refuse("data.name", "required: the extension's whole name, publisher/name")
	case strings.Count(u.Name, "/") != 1 || strings.HasPrefix(u.Name, "/") || strings.HasSuffix(u.Name, "/"):
		return refuse("data.name", "%q is not publisher/name", u.Name)
	case u.Version == "":
		return refuse("data.version", "required: the version installed")
	case u.Digest != "" && !digestShape(u.Digest):
		return refuse("data.digest", "%q is not a digest (sha256:<64 hex digits>)", u.Digest)
	}
	if d.Type == "install" {
		if u.Seats != nil {
			return refuse("data.seats", "an install report counts installs (quantity); seats are reported by %s", client.UsageSeatsType)
		}
		if u.Quantity == 0 {
			u.Quantity = 1
		}
		if u.Quantity < 1 || u.Quantity > 1_000_000 {
			return refuse("data.quantity", "%d: want 1 to 1000000 installs", u.Quantity)
		}
	} else {
		if u.Quantity != 0 {
			return refuse("data.quantity", "a seat report says how many seats are in use (seats), not a quantity")
		}
		if u.Seats == nil {
			return refuse("data.seats", "required: how many seats are in use")
		}
		if *u.Seats < 0 || *u.Seats > 1_000_000_000 {
			return refuse("data.seats", "%d: want 0 to 1000000000", *u.Seats)
		}
	}
	return d
}

// digestShape accepts sha256 and sha512 digests in OCI's form.
func digestShape(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	n := map[string]int{"sha256": 64, "sha512": 128}[alg]
	return ok && n > 0 && len(hex) == n && !strings.ContainsFunc(hex, func(r rune) bool { return !strings.ContainsRune("0123456789abcdef", r) })
}

// sdkField names the attribute an error of the SDK is about: its
// validation errors are keyed by attribute; its decoding errors name one.
func sdkField(err error) string {
	var ve event.ValidationError
	if errors.As(err, &ve) {
		keys := make([]string, 0, len(ve))
		for k := range ve {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 0 {
			return keys[0]
		}
	}
	msg := err.Error()
	for _, a := range []string{"specversion", "datacontenttype", "dataschema", "subject", "source", "type", "time", "id", "data_base64", "data"} {
		if strings.Contains(msg, a) {
			return a
		}
	}
	return "event"
}

// sdkMessage is the SDK's error on one line.
func sdkMessage(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
