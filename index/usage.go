package index

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Metering (DESIGN §6.4): usage events come from the registry's pull
// notifications (Webhook) and from install and seat reports, CloudEvents
// posted to /api/v1/usage/events with a tenant token (API); the store
// keeps each event once and a daily aggregate that GET /api/v1/usage reads.

// UsageConfig is the usage: section of index.yaml: how a registry pull is
// attributed to a tenant.
type UsageConfig struct {
	// RegistryUsers maps a registry user (the notification's actor.name)
	// to the tenant whose usage its pulls are. A pull by a user not listed,
	// or anonymous, counts for the tenant of the source it was pulled
	// from.
	RegistryUsers map[string]string `yaml:"registryUsers"`
	// IndexRegistryUsers are the registry users the index itself reads
	// as: its own pulls (ingest, crawl) are not usage. Without any, a pull
	// whose user agent is the index's (IndexUserAgent) is taken for the
	// index's; a client can send that user agent too, so an index that
	// bills pulls should read as a registry user of its own.
	IndexRegistryUsers []string `yaml:"indexRegistryUsers"`
}

// IndexUserAgent is the User-Agent the index reads registries with.
const IndexUserAgent = "mkt-index"

func checkUsage(u UsageConfig, add func(field, format string, args ...any)) {
	for user, tenant := range u.RegistryUsers {
		if user == "" || tenant == "" {
			add("usage.registryUsers", "%q: %q: want a registry user and the tenant its pulls count for", user, tenant)
		}
	}
	for i, user := range u.IndexRegistryUsers {
		if user == "" {
			add(fmt.Sprintf("usage.indexRegistryUsers[%d]", i), "empty: want the registry user the index reads as")
		}
		if _, ok := u.RegistryUsers[user]; ok {
			add(fmt.Sprintf("usage.indexRegistryUsers[%d]", i), "%q is also in usage.registryUsers: the index's own pulls are not usage", user)
		}
	}
}

// UsageMetrics counts usage events by type (pull, install, seats) and
// outcome (accepted, duplicate, refused).
func (m *Metrics) usage(typ, outcome string, n int) {
	if typ == "" {
		typ = "unknown" // refused before its type was known
	}
	if m != nil && n > 0 {
		m.Usage.WithLabelValues(typ, outcome).Add(float64(n))
	}
}

// usageAnswer is the body of a usage report's answer; a report refused
// whole also carries the error.
type usageAnswer struct {
	*client.ErrorBody
	client.UsageReport
}

// postUsageEvents records install and seat reports for the token's
// tenant. The tenant is the token's, never the body's: an event naming
// another is refused. Each event is settled alone: a refused one (with
// the field at fault) never keeps the others of its batch out.
func (a *API) postUsageEvents(w http.ResponseWriter, r *http.Request) {
	viewer, tok, err := a.viewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if tok == nil {
		a.fail(w, &apiError{http.StatusUnauthorized, "usage reports need a tenant's token (Authorization: Bearer …); the tenant is the token's"})
		return
	}
	now := time.Now()
	decoded, err := DecodeUsageEvents(r.Header.Get("Content-Type"), r.Body, now)
	if errors.Is(err, errUnsupportedUsageType) {
		a.fail(w, &apiError{http.StatusUnsupportedMediaType, err.Error()})
		return
	}
	if err != nil {
		a.fail(w, &apiError{http.StatusBadRequest, "usage report: " + err.Error()})
		return
	}
	rep := client.UsageReport{Events: make([]client.UsageEventResult, len(decoded))}
	var events []*store.UsageEvent
	var at []int // at[k] is the index in decoded of events[k]
	for i := range decoded {
		d := &decoded[i]
		rep.Events[i] = client.UsageEventResult{Index: i, ID: d.ID, Source: d.Source}
		if d.Err == nil {
			var e *store.UsageEvent
			e, d.Err = a.usageEvent(r.Context(), viewer, tok, d, now)
			if e != nil {
				events, at = append(events, e), append(at, i)
			}
		}
		if d.Err != nil {
			rep.Events[i].Status, rep.Events[i].Field = client.UsageRefused, d.Err.Field
			rep.Events[i].Error = &client.ErrorDetail{Code: client.CodeInvalidEvent, Message: d.Err.Error()}
			rep.Refused++
			a.Metrics.usage(d.Type, client.UsageRefused, 1)
		}
	}
	if len(events) > 0 {
		out, err := a.Metering.RecordUsage(r.Context(), events)
		if err != nil {
			a.fail(w, fmt.Errorf("record %d usage events: %w", len(events), err))
			return
		}
		for k, o := range out {
			res := &rep.Events[at[k]]
			switch {
			case o.Err != nil:
				res.Status, res.Field = client.UsageRefused, "time"
				res.Error = &client.ErrorDetail{Code: client.CodeInvalidEvent, Message: fmt.Sprintf("event %d (id %s): time: %v", at[k], res.ID, o.Err)}
				rep.Refused++
			case o.Duplicate:
				res.Status = client.UsageDuplicate
				rep.Duplicates++
			default:
				res.Status = client.UsageAccepted
				rep.Accepted++
			}
			a.Metrics.usage(events[k].Type, res.Status, 1)
		}
	}
	status := http.StatusAccepted
	var body usageAnswer
	body.UsageReport = rep
	switch {
	case rep.Refused == 0:
	case rep.Refused < len(decoded):
		status = http.StatusMultiStatus
	default:
		status = http.StatusUnprocessableEntity
		first := rep.Events[0].Error.Message
		msg := fmt.Sprintf("the usage report was refused: %s", first)
		if len(decoded) > 1 {
			msg = fmt.Sprintf("all %d events of the usage report were refused; the first: %s", len(decoded), first)
		}
		body.ErrorBody = &client.ErrorBody{Error: client.ErrorDetail{Code: client.CodeInvalidEvent, Message: msg}}
	}
	writeJSON(w, status, body)
}

// usageEvent settles a decoded report for the token's tenant: the
// extension and version must be ones the tenant can see in the index, the
// digest (when given) the one the index holds.
func (a *API) usageEvent(ctx context.Context, viewer *catalog.Viewer, tok *store.Token, d *DecodedUsage, now time.Time) (*store.UsageEvent, *UsageEventError) {
	refuse := func(field, format string, args ...any) (*store.UsageEvent, *UsageEventError) {
		return nil, &UsageEventError{Index: d.Index, ID: d.ID, Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if d.Tenant != "" && d.Tenant != tok.Tenant {
		return refuse("tenant", "an event cannot name its tenant (%q): the index takes it from the token, whose tenant is %s", d.Tenant, tok.Tenant)
	}
	vs, err := a.Catalog.Lookup(ctx, viewer, d.Data.Name)
	if err != nil {
		return refuse("data.name", "the index could not look %s up: %v", d.Data.Name, err)
	}
	if len(vs) == 0 {
		return refuse("data.name", "no extension %s in the index that tenant %s can see", d.Data.Name, tok.Tenant)
	}
	i := slices.IndexFunc(vs, func(v *store.Version) bool { return v.Version == d.Data.Version })
	if i < 0 {
		return refuse("data.version", "%s has no version %s in the index", d.Data.Name, d.Data.Version)
	}
	v := vs[i]
	if d.Data.Digest != "" && d.Data.Digest != v.Digest {
		return refuse("data.digest", "%s is not the digest the index holds for %s@%s (%s): a report counts the published bytes only",
			d.Data.Digest, v.Name, v.Version, v.Digest)
	}
	q := d.Data.Quantity
	if d.Type == store.UsageSeats {
		q = *d.Data.Seats
	}
	return &store.UsageEvent{Source: d.Source, ID: d.ID, At: d.Time, ReceivedAt: now, Tenant: tok.Tenant, Owner: v.Tenant,
		Publisher: v.Publisher(), Name: v.Name, Version: v.Version, Digest: v.Digest, Type: d.Type, Quantity: q}, nil
}

// getUsage answers the usage the token may see, as JSON or, on Accept:
// text/csv, as CSV.
func (a *API) getUsage(w http.ResponseWriter, r *http.Request) {
	q, err := parseUsageQuery(r.URL.Query(), time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	rows, err := a.usageRows(r, q)
	if err != nil {
		a.fail(w, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/csv") {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write([]string{"period", "tenant", "publisher", "name", "version", "pulls", "installs", "seats", "events"})
		for _, u := range rows {
			cw.Write([]string{u.Period, csvText(u.Tenant), csvText(u.Publisher), csvText(u.Name), csvText(u.Version), strconv.FormatInt(u.Pulls, 10),
				strconv.FormatInt(u.Installs, 10), strconv.FormatInt(u.Seats, 10), strconv.FormatInt(u.Events, 10)})
		}
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	writeUsagePage(w, q.Granularity, rows)
}

// writeUsagePage writes a client.UsagePage as writeJSON would, byte for
// byte, without reflection: an answer can hold 12,000 rows whose texts
// are a few tenants, names and versions, so each text is encoded once (by
// encoding/json, with writeJSON's settings) and the rows are appended as
// they go out, through a buffer, instead of building the whole document
// first.
func writeUsagePage(w io.Writer, granularity string, rows []store.UsageRow) error {
	// The rows are client.UsageRow's fields: a field added to one and
	// not the other stops this conversion compiling (and the test that
	// compares with encoding/json fails for a field added to both).
	_ = client.UsageRow(store.UsageRow{})
	encoded := map[string][]byte{}
	text := func(b []byte, s string) []byte {
		e, ok := encoded[s]
		if !ok {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			e = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			encoded[s] = e
		}
		return append(b, e...)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	b := make([]byte, 0, 512)
	b = append(b, `{"granularity":`...)
	b = append(text(b, granularity), `,"rows":[`...)
	for i := range rows {
		u := &rows[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"period":`...)
		b = append(text(b, u.Period), `,"tenant":`...)
		b = append(text(b, u.Tenant), `,"publisher":`...)
		b = append(text(b, u.Publisher), `,"name":`...)
		b = append(text(b, u.Name), `,"version":`...)
		b = append(text(b, u.Version), `,"pulls":`...)
		b = append(strconv.AppendInt(b, u.Pulls, 10), `,"installs":`...)
		b = append(strconv.AppendInt(b, u.Installs, 10), `,"seats":`...)
		b = append(strconv.AppendInt(b, u.Seats, 10), `,"events":`...)
		b = append(strconv.AppendInt(b, u.Events, 10), '}')
		if len(b) > 4096 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "]}\n"...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}

// csvText neutralises a text cell of a CSV answer against formula
// injection (OWASP "CSV Injection"): a spreadsheet runs a cell that starts
// with =, +, -, @, a tab or a carriage return as a formula, and a tenant
// is any string a token was made for (a registry user's tenant any string
// in index.yaml), so such a cell gets a leading single quote, which the
// spreadsheet shows as text. Names and versions cannot start so today;
// they go through it too, so a later rule change cannot reopen this.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// errUsageNeedsToken is the answer to a request for usage without a token:
// anonymous callers see no usage, not even totals, on the API and the web
// page alike.
var errUsageNeedsToken = &apiError{http.StatusUnauthorized, "usage is shown to tenants, publishers and the operator: send a token (Authorization: Bearer …)"}

// usageRows answers q with the usage the request's token may see: the one
// visibility rule of usage, for GET /api/v1/usage and the extension page
// alike. The operator's admin sees all; a publisher token the usage of its
// tenant's extensions by every tenant, and its own; any other token its
// tenant's own; no token is errUsageNeedsToken.
func (a *API) usageRows(r *http.Request, q store.UsageQuery) ([]store.UsageRow, error) {
	if a.Metering == nil {
		return nil, &apiError{http.StatusNotImplemented, "this index does not meter usage"}
	}
	viewer, tok, err := a.viewer(r)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, errUsageNeedsToken
	}
	q.Viewer = store.UsageViewer{
		All:       viewer.Operator && slices.Contains(tok.Roles, "admin"),
		Tenant:    tok.Tenant,
		Publisher: slices.Contains(tok.Roles, "publisher") || slices.Contains(tok.Roles, "admin"),
	}
	return a.Metering.Usage(r.Context(), q)
}

// parseUsageQuery reads GET /api/v1/usage's parameters: from (default: the
// first day of the current month, UTC) and to (default: open) as dates
// (2026-11-01) or months (2026-11, its first day); name as publisher/name,
// or the bare name with publisher=.
func parseUsageQuery(p map[string][]string, now time.Time) (store.UsageQuery, error) {
	get := func(k string) string {
		if v := p[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	q := store.UsageQuery{Publisher: get("publisher"), Name: get("name"), Tenant: get("tenant"), Granularity: get("granularity")}
	switch q.Granularity {
	case "":
		q.Granularity = store.Daily
	case store.Daily, store.Monthly:
	default:
		return q, &apiError{http.StatusBadRequest, fmt.Sprintf("granularity %q: want day or month", q.Granularity)}
	}
	if q.Name != "" && !strings.Contains(q.Name, "/") {
		if q.Publisher == "" {
			return q, &apiError{http.StatusBadRequest, fmt.Sprintf("name %q: give publisher/name, or publisher= with it", q.Name)}
		}
		q.Name = q.Publisher + "/" + q.Name
	}
	if pub, _, ok := strings.Cut(q.Name, "/"); ok && q.Publisher != "" && pub != q.Publisher {
		return q, &apiError{http.StatusBadRequest, fmt.Sprintf("name %s is not of publisher %s", q.Name, q.Publisher)}
	}
	var err error
	if q.From, err = usageDate("from", get("from")); err != nil {
		return q, err
	}
	if q.To, err = usageDate("to", get("to")); err != nil {
		return q, err
	}
	if q.From.IsZero() {
		n := now.UTC()
		q.From = time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return q, &apiError{http.StatusBadRequest, fmt.Sprintf("to (%s) must be after from (%s)", q.To.Format(time.DateOnly), q.From.Format(time.DateOnly))}
	}
	return q, nil
}

func usageDate(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &apiError{http.StatusBadRequest, fmt.Sprintf("%s %q: want a date (2026-11-01) or a month (2026-11)", field, s)}
}

// manifestTypes are the media types a pull of a version can have.
var manifestTypes = []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"}

// recordPulls counts the pulls of a notification batch: a GET of a
// manifest of a configured source that is an ingested version (so an
// evidence or signature manifest, a blob, or anything else never counts),
// not made by the index itself, for the tenant its registry user maps to
// or the source's. Each pull is one event (registry://host, the event's
// id): a redelivered batch counts nothing twice.
func (h *Webhook) recordPulls(ctx context.Context, events []Event) error {
	us, ok := h.usageStore()
	if !ok {
		return nil
	}
	type repoKey struct{ tenant, repository string }
	byDigest := map[repoKey]map[string]*store.Version{}
	var pulls []*store.UsageEvent
	for _, e := range events {
		t := e.Target
		if e.Action != "pull" || !slices.Contains(manifestTypes, t.MediaType) || t.Digest == "" ||
			(e.Request.Method != "" && e.Request.Method != http.MethodGet) || h.indexPull(e) {
			continue
		}
		host := e.registryHost()
		src := h.source(host, t.Repository)
		if src == nil {
			continue
		}
		k := repoKey{src.Tenant, src.Registry + "/" + t.Repository}
		vs, ok := byDigest[k]
		if !ok {
			list, err := us.RepositoryVersions(ctx, k.tenant, k.repository)
			if err != nil {
				return fmt.Errorf("count pulls of %s: %w", k.repository, err)
			}
			vs = map[string]*store.Version{}
			for _, v := range list {
				vs[v.Digest] = v
			}
			byDigest[k] = vs
		}
		v := vs[t.Digest]
		if v == nil {
			continue // not a version the index holds: evidence, or not ingested
		}
		tenant := h.Usage.RegistryUsers[e.Actor.Name]
		if tenant == "" {
			tenant = src.Tenant
		}
		at := e.Timestamp
		if at.IsZero() {
			at = time.Now()
		}
		pulls = append(pulls, &store.UsageEvent{Source: "registry://" + host, ID: e.ID, At: at, Tenant: tenant, Owner: v.Tenant,
			Publisher: v.Publisher(), Name: v.Name, Version: v.Version, Digest: v.Digest, Type: store.UsagePull, Quantity: 1})
	}
	if len(pulls) == 0 {
		return nil
	}
	out, err := us.RecordUsage(ctx, pulls)
	if err != nil {
		return fmt.Errorf("count %d pulls: %w", len(pulls), err)
	}
	for i, o := range out {
		switch {
		case o.Err != nil:
			h.log().Warn("pull not counted", "event", pulls[i].ID, "err", o.Err)
			h.Metrics.usage(store.UsagePull, client.UsageRefused, 1)
		case o.Duplicate:
			h.Metrics.usage(store.UsagePull, client.UsageDuplicate, 1)
		default:
			h.Metrics.usage(store.UsagePull, client.UsageAccepted, 1)
		}
	}
	return nil
}

// indexPull reports whether the index itself made the pull.
func (h *Webhook) indexPull(e Event) bool {
	if len(h.Usage.IndexRegistryUsers) > 0 {
		return slices.Contains(h.Usage.IndexRegistryUsers, e.Actor.Name)
	}
	return strings.HasPrefix(e.Request.UserAgent, IndexUserAgent)
}

// PullUsageStore is what counting pulls needs of a store.
type PullUsageStore interface {
	RecordUsage(ctx context.Context, events []*store.UsageEvent) ([]store.UsageRecorded, error)
	RepositoryVersions(ctx context.Context, tenant, repository string) ([]*store.Version, error)
}

// usageStore is UsageEvents, or the Ingester's store when it can count.
func (h *Webhook) usageStore() (PullUsageStore, bool) {
	if h.UsageEvents != nil {
		return h.UsageEvents, true
	}
	us, ok := h.Ingester.Store.(PullUsageStore)
	return us, ok
}
