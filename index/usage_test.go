package index_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
	"oras.land/oras-go/v2"
)

// usageWorld is an index API with usage over a store holding acme's
// public acme/crm (1.0.0, 1.1.0), globex's private globex/secret, and
// tokens: readers of acme, globex and initech, acme's publisher, and the
// operator's admin.
type usageWorld struct {
	srv    *httptest.Server
	st     store.Store
	api    *index.API
	tokens map[string]string
}

func newUsageWorld(t *testing.T, st store.Store) *usageWorld {
	ctx := context.Background()
	w := &usageWorld{st: st, tokens: map[string]string{}}
	for name, tk := range map[string]struct {
		tenant string
		roles  []string
	}{
		"acme": {"acme", []string{"reader"}}, "acme-publisher": {"acme", []string{"publisher"}},
		"globex": {"globex", []string{"reader"}}, "globex-publisher": {"globex", []string{"publisher"}},
		"initech": {"initech", []string{"reader"}}, "ops": {"ops", []string{"admin"}}, "ops-reader": {"ops", []string{"reader"}},
	} {
		c, err := index.CreateToken(ctx, st, tk.tenant, tk.roles, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[name] = c.Secret
	}
	for _, v := range []*store.Version{
		{Tenant: "acme", Name: "acme/crm", Version: "1.0.0", Digest: digestOf("crm1"), Visibility: store.Public},
		{Tenant: "acme", Name: "acme/crm", Version: "1.1.0", Digest: digestOf("crm11"), Visibility: store.Public},
		{Tenant: "globex", Name: "globex/secret", Version: "1.0.0", Digest: digestOf("secret"), Visibility: store.Private},
	} {
		v.Repository, v.Kind, v.License = "reg.example/"+v.Name, "Module", "MIT"
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	w.api = &index.API{Store: st, Metering: st, Operator: "ops", Metrics: index.NewMetrics()}
	w.srv = httptest.NewServer(w.api.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

func digestOf(s string) string {
	return "sha256:" + strings.Repeat(fmt.Sprintf("%x", s[0]), 32)[:64]
}

// post sends body as a usage report with who's token ("" none).
func (w *usageWorld) post(t *testing.T, who, ctype string, body any) (int, map[string]any) {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/api/v1/usage/events", bytes.NewReader(raw))
	req.Header.Set("Content-Type", ctype)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[who])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (w *usageWorld) client(who string) *client.Client {
	return &client.Client{URL: w.srv.URL, Token: w.tokens[who]}
}

func (w *usageWorld) usage(t *testing.T, who string, q client.UsageQuery) []client.UsageRow {
	t.Helper()
	if q.From == "" {
		q.From = "2026-01-01"
	}
	p, err := w.client(who).Usage(context.Background(), q)
	if err != nil {
		t.Fatalf("usage as %s: %v", who, err)
	}
	return p.Rows
}

// ce is a CloudEvent as a sender writes it, as a map so that tests can
// break it.
func ce(id, typ string, data map[string]any) map[string]any {
	return map[string]any{"specversion": "1.0", "id": id, "source": "urn:test:factory", "type": typ,
		"time": "2026-11-14T10:00:00Z", "datacontenttype": "application/json", "data": data}
}

func install(id, version string) map[string]any {
	return ce(id, client.UsageInstallType, map[string]any{"name": "acme/crm", "version": version})
}

func TestUsageBatchRefusesBadEventsAloneAndCountsDuplicatesOnce(t *testing.T) {
	w := newUsageWorld(t, storetest.SQLite(t))
	seats := ce("s1", client.UsageSeatsType, map[string]any{"name": "acme/crm", "version": "1.0.0", "seats": 25})
	future := install("future", "1.0.0")
	future["time"] = time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	noSpec := install("nospec", "1.0.0")
	delete(noSpec, "specversion")
	batch := []any{
		install("i1", "1.0.0"),
		install("i1", "1.0.0"), // the same event again in the batch
		ce("bad-type", "io.connectsoft.marketplace.download.v1", map[string]any{"name": "acme/crm", "version": "1.0.0"}),
		install("no-version", "9.9.9"),
		ce("secret", client.UsageInstallType, map[string]any{"name": "globex/secret", "version": "1.0.0"}),
		ce("bad-digest", client.UsageInstallType, map[string]any{"name": "acme/crm", "version": "1.0.0", "digest": digestOf("other")}),
		future, noSpec, "not an object",
		ce("no-seats", client.UsageSeatsType, map[string]any{"name": "acme/crm", "version": "1.0.0"}),
		seats,
	}
	status, out := w.post(t, "initech", client.CloudEventBatchContentType, batch)
	if status != http.StatusMultiStatus {
		t.Fatalf("status %d, want 207: %v", status, out)
	}
	want := []struct{ status, field string }{
		{"accepted", ""}, {"duplicate", ""}, {"refused", "type"}, {"refused", "data.version"}, {"refused", "data.name"},
		{"refused", "data.digest"}, {"refused", "time"}, {"refused", "specversion"}, {"refused", "event"}, {"refused", "data.seats"}, {"accepted", ""},
	}
	events := out["events"].([]any)
	for i, wnt := range want {
		e := events[i].(map[string]any)
		field, _ := e["field"].(string)
		if e["status"] != wnt.status || field != wnt.field {
			t.Errorf("event %d: %v, want %s %q", i, e, wnt.status, wnt.field)
		}
		if wnt.status == "refused" {
			msg := e["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, fmt.Sprintf("event %d", i)) || !strings.Contains(msg, wnt.field) {
				t.Errorf("event %d's refusal names neither it nor its field: %q", i, msg)
			}
		}
	}
	if out["accepted"] != 2.0 || out["duplicates"] != 1.0 || out["refused"] != 8.0 {
		t.Fatalf("counts: %v", out)
	}
	// Sent again (a retry), nothing counts twice.
	if status, out := w.post(t, "initech", client.CloudEventBatchContentType, batch[:2]); status != http.StatusAccepted || out["duplicates"] != 2.0 {
		t.Fatalf("retry: %d %v", status, out)
	}
	rows := w.usage(t, "initech", client.UsageQuery{})
	if len(rows) != 1 || rows[0].Installs != 1 || rows[0].Seats != 25 || rows[0].Tenant != "initech" || rows[0].Period != "2026-11-14" {
		t.Fatalf("initech's usage: %+v", rows)
	}
	// A single event that is refused is a 422 naming the event and field.
	status, out = w.post(t, "initech", client.CloudEventContentType, install("x", "7.0.0"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(out["error"]), "data.version") {
		t.Fatalf("single bad event: %d %v", status, out)
	}
	// Not a report at all.
	if status, _ := w.post(t, "initech", "application/json", install("x", "1.0.0")); status != http.StatusUnsupportedMediaType {
		t.Fatalf("application/json: %d, want 415", status)
	}
	if status, _ := w.post(t, "initech", client.CloudEventBatchContentType, []byte(`{"not":"an array"}`)); status != http.StatusBadRequest {
		t.Fatalf("a batch that is no array: %d, want 400", status)
	}
	if status, _ := w.post(t, "", client.CloudEventContentType, install("anon", "1.0.0")); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", status)
	}
	m := testutilCounter(t, w.api.Metrics, `mkt_index_usage_events_total{outcome="refused",type="install"}`)
	if m != 5 { // type, version, name, digest, time; the others have no type
		t.Fatalf("refused installs counted %v", m)
	}
}

// testutilCounter reads one sample of the metrics' exposition.
func testutilCounter(t *testing.T, m *index.Metrics, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no %s in the metrics", series)
	return 0
}

// An attacker with globex's token tries to bill its installs to initech,
// through the tenant extension attribute and through the data; both are
// refused, and initech's usage stays empty.
func TestUsageTenantComesFromTheTokenNeverTheBody(t *testing.T) {
	w := newUsageWorld(t, storetest.SQLite(t))
	ext := install("as-initech", "1.0.0")
	ext["tenant"] = "initech"
	inData := ce("in-data", client.UsageInstallType, map[string]any{"name": "acme/crm", "version": "1.0.0", "tenant": "initech"})
	status, out := w.post(t, "globex", client.CloudEventBatchContentType, []any{ext, inData, install("honest", "1.0.0")})
	if status != http.StatusMultiStatus {
		t.Fatalf("status %d: %v", status, out)
	}
	events := out["events"].([]any)
	for i, field := range []string{"tenant", "data.tenant"} {
		if e := events[i].(map[string]any); e["status"] != "refused" || e["field"] != field {
			t.Errorf("event %d: %v", i, e)
		}
	}
	if rows := w.usage(t, "ops", client.UsageQuery{Tenant: "initech"}); len(rows) != 0 {
		t.Fatalf("initech billed for globex's installs: %+v", rows)
	}
	if rows := w.usage(t, "ops", client.UsageQuery{Tenant: "globex"}); len(rows) != 1 || rows[0].Installs != 1 {
		t.Fatalf("globex's honest install: %+v", rows)
	}
	// A tenant naming itself is fine.
	self := install("self", "1.1.0")
	self["tenant"] = "globex"
	if status, out := w.post(t, "globex", client.CloudEventContentType, self); status != http.StatusAccepted {
		t.Fatalf("tenant naming itself: %d %v", status, out)
	}
	// And one tenant cannot make another's events duplicates by sending
	// their ids first.
	w.post(t, "initech", client.CloudEventContentType, install("self", "1.1.0"))
	if rows := w.usage(t, "initech", client.UsageQuery{}); len(rows) != 1 || rows[0].Installs != 1 {
		t.Fatalf("initech's own event with globex's id: %+v", rows)
	}
}

// Tenant globex tries to read initech's usage through every filter and in
// CSV; acme's publisher token sees its extension's usage by tenant; the
// operator's admin sees everything; nobody else sees anything.
func TestUsageIsVisibleToItsTenantItsPublisherAndTheOperatorOnly(t *testing.T) {
	w := newUsageWorld(t, storetest.SQLite(t))
	for _, who := range []string{"globex", "initech"} {
		if status, out := w.post(t, who, client.CloudEventContentType, install(who+"-1", "1.0.0")); status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", who, status, out)
		}
	}
	if status, _ := w.post(t, "globex", client.CloudEventContentType, ce("own", client.UsageInstallType, map[string]any{"name": "globex/secret", "version": "1.0.0"})); status != http.StatusAccepted {
		t.Fatalf("globex's install of its own private extension: %d", status)
	}
	tenants := func(rows []client.UsageRow) (out []string) {
		for _, r := range rows {
			out = append(out, r.Tenant+":"+r.Name)
		}
		return out
	}
	for _, c := range []struct {
		who  string
		q    client.UsageQuery
		want string
	}{
		{"globex", client.UsageQuery{}, "[globex:acme/crm globex:globex/secret]"},
		{"globex", client.UsageQuery{Tenant: "initech"}, "[]"},
		{"globex", client.UsageQuery{Publisher: "acme"}, "[globex:acme/crm]"},
		{"globex", client.UsageQuery{Name: "acme/crm"}, "[globex:acme/crm]"},
		{"globex", client.UsageQuery{Publisher: "acme", Name: "crm", Tenant: "initech"}, "[]"},
		{"globex-publisher", client.UsageQuery{Tenant: "initech"}, "[]"},
		{"initech", client.UsageQuery{Publisher: "globex"}, "[]"},
		{"acme", client.UsageQuery{}, "[]"}, // a reader of acme uses nothing
		{"acme-publisher", client.UsageQuery{}, "[globex:acme/crm initech:acme/crm]"},
		{"acme-publisher", client.UsageQuery{Publisher: "globex"}, "[]"},
		{"ops-reader", client.UsageQuery{}, "[]"},
		{"ops", client.UsageQuery{}, "[globex:acme/crm initech:acme/crm globex:globex/secret]"},
	} {
		if got := fmt.Sprint(tenants(w.usage(t, c.who, c.q))); got != c.want {
			t.Errorf("%s with %+v sees %s, want %s", c.who, c.q, got, c.want)
		}
	}
	var csv bytes.Buffer
	if err := w.client("globex").UsageCSV(context.Background(), client.UsageQuery{From: "2026-11", Tenant: "initech"}, &csv); err != nil {
		t.Fatal(err)
	}
	if csv.String() != "period,tenant,publisher,name,version,pulls,installs,seats,events\n" {
		t.Fatalf("globex's CSV of initech: %q", csv.String())
	}
	csv.Reset()
	if err := w.client("acme-publisher").UsageCSV(context.Background(), client.UsageQuery{From: "2026-11", Granularity: "month"}, &csv); err != nil {
		t.Fatal(err)
	}
	want := "period,tenant,publisher,name,version,pulls,installs,seats,events\n2026-11,globex,acme,acme/crm,1.0.0,0,1,0,1\n2026-11,initech,acme,acme/crm,1.0.0,0,1,0,1\n"
	if csv.String() != want {
		t.Fatalf("acme's CSV:\n%s\nwant\n%s", csv.String(), want)
	}
	if _, err := (&client.Client{URL: w.srv.URL}).Usage(context.Background(), client.UsageQuery{}); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("anonymous usage: %v", err)
	}
	for _, q := range []client.UsageQuery{{Granularity: "week"}, {From: "yesterday"}, {Name: "crm"}, {From: "2026-11-10", To: "2026-11-01"}, {Publisher: "acme", Name: "globex/secret"}} {
		if _, err := w.client("ops").Usage(context.Background(), q); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", q, err)
		}
	}
}

// The client's small encoding is a CloudEvent the SDK reads as one.
func TestUsageClientEventsAreCloudEvents(t *testing.T) {
	for _, e := range []client.UsageEvent{
		client.NewInstallEvent("mkt://host", "acme/crm", "1.0.0", digestOf("crm1")),
		client.NewSeatsEvent("urn:factory", "acme/crm", "1.0.0", 0),
	} {
		raw, _ := json.Marshal(e)
		var ev event.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if err := ev.Validate(); err != nil || ev.ID() != e.ID || ev.Type() != e.Type || !ev.Time().Equal(e.Time) {
			t.Fatalf("SDK read %s as %v (%v)", raw, ev, err)
		}
		got, _ := index.DecodeUsageEvents(client.CloudEventContentType, bytes.NewReader(raw), time.Now())
		if len(got) != 1 || got[0].Err != nil || got[0].Data.Name != "acme/crm" {
			t.Fatalf("decoded %s as %+v", raw, got)
		}
	}
}

// TestUsageCountsRealPullNotifications runs an index (NewServer, Serve)
// that a CNCF distribution registry notifies, on both stores: a pull of an
// ingested version counts once for the tenant of the registry user that
// pulled (or the source's without a mapping); the index's own reads while
// ingesting, a pull of the version's signature and a HEAD never count.
func TestUsageCountsRealPullNotifications(t *testing.T) {
	for _, c := range []struct {
		name, store string
		auth        bool
		want        string
	}{
		{"sqlite, mapped registry user", "sqlite", true, "globex"},
		{"sqlite, anonymous", "sqlite", false, "acme"},
		{"postgres, mapped registry user", "postgres", true, "globex"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			dir := t.TempDir()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			opts := testenv.DistributionOptions{NotifyURL: "http://" + ln.Addr().String() + "/api/v1/events/registry",
				NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}}}
			if c.auth {
				opts.TLS, opts.Username, opts.Password = true, "ci-globex", "pw"
			}
			reg, err := testenv.StartDistribution(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			url := "sqlite://" + filepath.Join(dir, "index.db")
			if c.store == "postgres" {
				url = storetest.PostgresSchema(t)
			}
			cfg := &index.Config{Store: url, WebhookSecret: secret, Dir: dir,
				Sources: []index.Source{{Name: "acme", Registry: reg.Host, PlainHTTP: reg.PlainHTTP, Repositories: []string{"acme/**"}, Tenant: "acme",
					Visibility: store.Public, Interval: time.Hour}},
				Usage: index.UsageConfig{RegistryUsers: map[string]string{"ci-globex": "globex"}}}
			pub := fixture.NewPublisher(t, reg)
			ro := pub.Remote
			ro.UserAgent = "mkt/test" // the server sets its own
			srv, err := index.NewServer(ctx, cfg, ro, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			defer func() { cancel(); <-done }()
			tok, err := index.CreateToken(ctx, srv.Store, "ops", []string{"admin"}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Operator = "ops"
			srv.API.Operator = "ops"

			signer, _, _ := fixture.KeyPair(t, dir, "acme")
			ref := pub.Publish("", fixture.Ext{Name: "acme/crm", Version: "1.0.0"})
			pub.Sign(ref, signer)
			digest := ref[strings.LastIndex(ref, "@")+1:]
			eventually(t, "the version to be ingested", func() bool {
				_, err := srv.Store.Version(ctx, "acme", "acme/crm", "1.0.0")
				return err == nil
			})
			repo, err := artifact.NewRepository(reg.Ref("acme/crm"), pub.Remote)
			if err != nil {
				t.Fatal(err)
			}
			// The signature first: notifications arrive in order, so once
			// the version's pull is counted, this one was seen before it.
			sigTag := strings.Replace(digest, ":", "-", 1) + ".sig"
			if _, _, err := oras.FetchBytes(ctx, repo, sigTag, oras.DefaultFetchBytesOptions); err != nil {
				t.Fatalf("pull the signature: %v", err)
			}
			if _, err := repo.Resolve(ctx, "1.0.0"); err != nil { // a HEAD
				t.Fatal(err)
			}
			if _, err := artifact.Fetch(ctx, repo, "1.0.0"); err != nil {
				t.Fatal(err)
			}
			api := &client.Client{URL: "http://" + ln.Addr().String(), Token: tok.Secret}
			var rows []client.UsageRow
			eventually(t, "the pull to be counted", func() bool {
				p, err := api.Usage(ctx, client.UsageQuery{From: time.Now().UTC().Format(time.DateOnly)})
				if err != nil {
					t.Fatal(err)
				}
				rows = p.Rows
				return len(rows) > 0
			})
			if len(rows) != 1 || rows[0].Pulls != 1 || rows[0].Tenant != c.want || rows[0].Name != "acme/crm" || rows[0].Version != "1.0.0" || rows[0].Events != 1 {
				t.Fatalf("usage after one pull: %+v", rows)
			}
			var raw []*store.UsageEvent
			srv.Store.UsageEvents(ctx, store.UsageEventQuery{}, func(e *store.UsageEvent) error { raw = append(raw, e); return nil })
			if len(raw) != 1 || raw[0].Digest != digest || raw[0].Owner != "acme" || !strings.HasPrefix(raw[0].Source, "registry://") {
				t.Fatalf("raw pull events: %+v", raw)
			}
		})
	}
}

// FuzzDecodeUsageEvents: whatever the body, the decoder answers a whole
// refusal or one result per event, each either refused with its index and
// a field or a report the store can take (a known type, a name of the form
// publisher/name, a version, a quantity in range), and never panics.
func FuzzDecodeUsageEvents(f *testing.F) {
	good, _ := json.Marshal(client.NewInstallEvent("mkt://host", "acme/crm", "1.0.0", ""))
	seats, _ := json.Marshal(client.NewSeatsEvent("urn:f", "acme/crm", "1.0.0", 3))
	f.Add(true, good)
	f.Add(false, good)
	f.Add(false, []byte("["+string(good)+","+string(seats)+`,{"specversion":"1.0"},7,null]`))
	f.Add(true, []byte(`{"specversion":"1.0","id":"x","source":"s","type":"`+client.UsageSeatsType+`","data":{"name":"a/b","version":"1","seats":-1}}`))
	f.Add(true, []byte(`{"specversion":"1.0","id":"x","source":"s","type":"`+client.UsageInstallType+`","data_base64":"e30="}`))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, single bool, body []byte) {
		ctype := client.CloudEventBatchContentType
		if single {
			ctype = client.CloudEventContentType
		}
		got, err := index.DecodeUsageEvents(ctype, bytes.NewReader(body), now)
		if err != nil {
			if got != nil {
				t.Fatalf("refused whole and returned events: %v", err)
			}
			return
		}
		if single && len(got) != 1 {
			t.Fatalf("a single event decoded as %d", len(got))
		}
		for i, d := range got {
			if d.Index != i {
				t.Fatalf("event %d has index %d", i, d.Index)
			}
			if d.Err != nil {
				if d.Err.Field == "" || d.Err.Index != i || !strings.Contains(d.Err.Error(), d.Err.Field) {
					t.Fatalf("refusal without its field or index: %+v", d.Err)
				}
				continue
			}
			q := d.Data.Quantity
			if d.Type == store.UsageSeats {
				q = *d.Data.Seats
			}
			e := &store.UsageEvent{Source: d.Source, ID: d.ID, At: d.Time, Tenant: "t", Owner: "o", Publisher: "p",
				Name: d.Data.Name, Version: d.Data.Version, Type: d.Type, Quantity: q}
			if err := store.ValidateUsageEvent(e); err != nil {
				t.Fatalf("accepted an event the store refuses: %v (%s)", err, body)
			}
			if d.Time.After(now.Add(5 * time.Minute)) {
				t.Fatalf("accepted a time in the future: %v", d.Time)
			}
		}
	})
}
