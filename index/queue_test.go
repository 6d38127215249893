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
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// queueStores are the stores the queue runs on: each test runs on both.
var queueStores = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "index.db") }},
	{"postgres", func(t *testing.T) string { return storetest.PostgresSchema(t) }},
}

// served is an index server (store, webhook, queue, crawler) on a port of
// its own, with a distribution registry that notifies it.
type served struct {
	srv *index.Server
	url string
	reg *testenv.Registry
	pub *fixture.Publisher
}

func serveIndex(t *testing.T, storeURL string) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &served{url: "http://" + ln.Addr().String() + "/api/v1/events/registry"}
	s.reg, err = testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL: s.url, NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.reg.Close() })
	dir := t.TempDir()
	cfg := &index.Config{Store: storeURL, WebhookSecret: secret, Dir: dir, Sources: []index.Source{{
		Name: "q", Registry: s.reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
		Tenant: "acme", Visibility: store.Public, Interval: time.Hour,
	}}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.srv, err = index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	s.pub = fixture.NewPublisher(t, s.reg)
	return s
}

func (s *served) stored(t *testing.T, name, version string) *store.Version {
	t.Helper()
	v, err := s.srv.Store.Version(context.Background(), "acme", name, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pushKindMismatch pushes a Connector whose manifest says it is a Module:
// an artifact the index must refuse, the way issue 9 saw it block ingest.
func pushKindMismatch(t *testing.T, pub *fixture.Publisher, name, version string) (digest string) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(fmt.Sprintf("apiVersion: marketplace.connectsoft.io/v1\nkind: Connector\nmetadata:\n  name: %s\n  version: %s\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n", name, version)), 0o644)
	ctx := context.Background()
	pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	repo, err := artifact.NewRepository(pub.Reg.Ref(name), pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	config, err := pkg.Extension.CanonicalJSON() // the config blob Pack made
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(ctx, pkg.Config, bytes.NewReader(config)); err != nil {
		t.Fatal(err)
	}
	layer, err := pkg.OpenLayer()
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	if err := repo.Push(ctx, pkg.Layer, layer); err != nil {
		t.Fatal(err)
	}
	manifest := bytes.Replace(pkg.ManifestJSON(), []byte(artifact.KindConnector.ArtifactType()), []byte(artifact.KindModule.ArtifactType()), 1)
	if bytes.Equal(manifest, pkg.ManifestJSON()) {
		t.Fatal("the packed manifest does not carry the Connector artifactType")
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
	if err := repo.PushReference(ctx, desc, bytes.NewReader(manifest), version); err != nil {
		t.Fatal(err)
	}
	return desc.Digest.String()
}

// One artifact the index must refuse, in the middle of good ones, used to
// make the webhook answer 500 for its batch forever, and distribution
// retried that batch before any later notification (issue 9, item 4). Now
// the batch is queued and acknowledged, the bad event is quarantined with
// an ingest-failed alert, and everything around and after it is ingested.
func TestWebhookQuarantinesABadArtifactAndKeepsIngesting(t *testing.T) {
	for _, st := range queueStores {
		t.Run(st.name, func(t *testing.T) {
			s := serveIndex(t, st.url(t))
			s.pub.Publish("", fixture.Ext{Name: "acme/good-a", Version: "1.0.0"})
			bad := pushKindMismatch(t, s.pub, "acme/bad", "1.0.0")
			s.pub.Publish("", fixture.Ext{Name: "acme/good-b", Version: "1.0.0"})

			// The same bad artifact and a good one in one batch, as
			// distribution batches them: acknowledged, not refused.
			goodRef := s.pub.Publish("", fixture.Ext{Name: "acme/good-c", Version: "1.0.0"})
			event := func(id, repo, tag, digest string) string {
				return fmt.Sprintf(`{"id":%q,"action":"push","target":{"mediaType":%q,"digest":%q,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":%q}}`,
					id, ocispec.MediaTypeImageManifest, digest, repo, s.reg.Host, repo, digest, tag)
			}
			batch := `{"events":[` + event("manual-bad", "acme/bad", "1.0.0", bad) + `,` +
				event("manual-good", "acme/good-c", "1.0.0", goodRef[strings.Index(goodRef, "@")+1:]) + `]}`
			if code := post(t, s.url, "Bearer "+secret, batch); code != http.StatusAccepted {
				t.Fatalf("a batch holding a bad artifact: %d, want 202", code)
			}
			// Later notifications still reach the index.
			s.pub.Publish("", fixture.Ext{Name: "acme/later", Version: "2.0.0"})
			for _, n := range []string{"acme/good-a", "acme/good-b", "acme/good-c"} {
				eventually(t, n+" to be ingested", func() bool { return s.stored(t, n, "1.0.0") != nil })
			}
			eventually(t, "the push after the bad artifact to be ingested", func() bool { return s.stored(t, "acme/later", "2.0.0") != nil })
			var failed []*store.Alert
			eventually(t, "an ingest-failed alert for the bad artifact", func() bool {
				alerts, err := s.srv.Store.Alerts(context.Background(), "acme")
				if err != nil {
					t.Fatal(err)
				}
				failed = failed[:0]
				for _, a := range alerts {
					if a.Type == "ingest-failed" {
						failed = append(failed, a)
					}
				}
				return len(failed) > 0
			})
			a := failed[0]
			if len(failed) != 1 || a.NewDigest != bad || !strings.Contains(a.Repository, "acme/bad") || a.Version != "1.0.0" ||
				!strings.Contains(a.Message, "artifactType") {
				t.Fatalf("ingest-failed alerts (two events, one artifact): %+v", failed)
			}
			if v := s.stored(t, "acme/bad", "1.0.0"); v != nil {
				t.Fatalf("the bad artifact was stored: %+v", v)
			}
		})
	}
}

// replicaEnv carries a replica's settings to TestHelperProcessQueueReplica.
const replicaEnv = "MKT_TEST_QUEUE_REPLICA"

type replicaSettings struct {
	ID, Listen, Store, Registry string
}

// TestHelperProcessQueueReplica is not a test: it is one index replica,
// run as a process of its own by TestReplicasIngestEveryEventOnceAcrossKill9
// (the test binary started again with this test selected), so that it can
// be killed with SIGKILL.
func TestHelperProcessQueueReplica(t *testing.T) {
	raw := os.Getenv(replicaEnv)
	if raw == "" {
		t.Skip("runs only as a replica process")
	}
	var rs replicaSettings
	if err := json.Unmarshal([]byte(raw), &rs); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	dir := t.TempDir()
	cfg := &index.Config{Store: rs.Store, WebhookSecret: secret, Dir: dir, Sources: []index.Source{{
		Name: "q", Registry: rs.Registry, PlainHTTP: true, Repositories: []string{"acme/**"},
		Tenant: "acme", Visibility: store.Public, Interval: time.Hour,
	}}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", rs.ID)
	s, err := index.NewServer(ctx, cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")}, log)
	if err != nil {
		t.Fatal(err)
	}
	// A killed replica's claimed events run again after seconds, not minutes.
	if s.Queue, err = index.NewQueue(s.Store, s.Webhook, index.QueueOptions{
		ID: rs.ID, AttemptTimeout: 2 * time.Second, RescueAfter: 3 * time.Second, PollInterval: 20 * time.Millisecond, Log: log,
	}); err != nil {
		t.Fatal(err)
	}
	s.Webhook.Queue = s.Queue
	ln, err := net.Listen("tcp", rs.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
}

// Three replicas on one PostgreSQL database share the queue behind a load
// balancer; one is killed with SIGKILL while it ingests. Its claimed event
// runs again on another replica, and every event is stored exactly once:
// as many version writes as versions, none lost, no alert.
func TestReplicasIngestEveryEventOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three index processes")
	}
	url := storetest.PostgresSchema(t)
	st, err := store.Open(context.Background(), url) // migrated once, before the replicas start
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, _ := st.(store.QueueStore).QueueDB()

	// The load balancer: each notification to the next replica that answers.
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	var next atomic.Int64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for range len(addrs) {
			addr := addrs[next.Add(1)%int64(len(addrs))]
			req, _ := http.NewRequest(r.Method, "http://"+addr+r.URL.Path, bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // a dead replica: the next one
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no replica answers", http.StatusBadGateway)
	}))
	defer lb.Close()
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL: lb.URL + "/api/v1/events/registry", NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	replicas := make([]*exec.Cmd, len(addrs))
	for i, addr := range addrs {
		rs, _ := json.Marshal(replicaSettings{ID: fmt.Sprintf("replica-%d", i), Listen: addr, Store: url, Registry: reg.Host})
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessQueueReplica$", "-test.count=1")
		cmd.Env = append(os.Environ(), replicaEnv+"="+string(rs))
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		replicas[i] = cmd
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
		eventually(t, "replica "+addr+" to listen", func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
	}

	// Publish until the victim has been killed while it held an event, and
	// a few more after.
	const victim = "replica-1"
	pub := fixture.NewPublisher(t, reg)
	killed := make(chan struct{})
	pushed := make(chan int)
	go func() {
		n, after := 0, 0
		for ; n < 200 && after < 10; n++ {
			pub.Publish("", fixture.Ext{Name: fmt.Sprintf("acme/r%03d", n), Version: "1.0.0"})
			select {
			case <-killed:
				after++
			default:
			}
		}
		pushed <- n
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var running int
		if err := db.QueryRow(`SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`, victim).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running > 0 {
			replicas[1].Process.Signal(syscall.SIGKILL)
			replicas[1].Wait()
			close(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the victim replica never held an event while the others ingested")
		}
		time.Sleep(time.Millisecond)
	}
	n := <-pushed

	// Nothing lost: every version stored, the killed replica's events
	// included (run again once River rescues them).
	countRows := func(query string, args ...any) int {
		var c int
		if err := db.QueryRow(query, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for deadline := time.Now().Add(2 * time.Minute); countRows(`SELECT count(*) FROM versions`) < n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d versions stored two minutes after the kill", countRows(`SELECT count(*) FROM versions`), n)
		}
	}
	// Nothing twice: one version write per event (each takes the next
	// number of version_seq), no alert, and the kill did hit an ingest.
	if writes := countRows(`SELECT n FROM version_seq`); writes != n {
		t.Errorf("%d version writes for %d push events", writes, n)
	}
	if alerts := countRows(`SELECT count(*) FROM alerts`); alerts != 0 {
		t.Errorf("%d alerts", alerts)
	}
	if again := countRows(`SELECT count(*) FROM river_job WHERE attempt > 1`); again == 0 {
		t.Error("no event was run again after the kill: it hit no ingest")
	}
}

// A registry that fails (503) is a transient error: the event is retried
// with backoff until it is ingested, without an alert. One that never
// recovers is quarantined after the last attempt, with an alert that says so.
func TestQueueRetriesTransientFailuresThenQuarantines(t *testing.T) {
	for _, st := range queueStores {
		t.Run(st.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), st.url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			reg, err := testenv.StartDistribution(testenv.DistributionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			proxy, err := testenv.StartFaultProxy(reg.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			pub := fixture.NewPublisher(t, reg)
			flaky := pub.Publish("", fixture.Ext{Name: "acme/flaky", Version: "1.0.0"})
			down := pub.Publish("", fixture.Ext{Name: "acme/down", Version: "1.0.0"})
			dir := t.TempDir()
			hook := &index.Webhook{Secret: secret,
				Sources: []index.Source{{Name: "p", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}},
				Ingester: &index.Ingester{Store: s, Remote: func(src *index.Source) remote.Options {
					return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
				}}, Events: s}
			q, err := index.NewQueue(s, hook, index.QueueOptions{MaxAttempts: 3, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			hook.Queue = q
			if err := q.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer q.Stop(context.Background())
			srv := httptest.NewServer(hook)
			defer srv.Close()

			db, _ := s.(store.QueueStore).QueueDB()
			// attempts is how often the newest queued event was tried.
			attempts := func() (n int) {
				if err := db.QueryRow(`SELECT attempt FROM river_job ORDER BY id DESC LIMIT 1`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			event := func(id, repo, ref string) string {
				digest := ref[strings.Index(ref, "@")+1:]
				return fmt.Sprintf(`{"id":%q,"action":"push","target":{"mediaType":%q,"digest":%q,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":"1.0.0"}}`,
					id, ocispec.MediaTypeImageManifest, digest, repo, proxy.Host, repo, digest)
			}
			proxy.Inject(testenv.Fault{Kind: testenv.Status, Status: http.StatusServiceUnavailable, PathContains: "/acme/"})
			if code := post(t, srv.URL, "Bearer "+secret, `{"events":[`+event("flaky-1", "acme/flaky", flaky)+`]}`); code != http.StatusAccepted {
				t.Fatalf("queueing: %d", code)
			}
			eventually(t, "a retry of the event the registry failed", func() bool { return attempts() >= 2 })
			if v, _ := s.Version(context.Background(), "acme", "acme/flaky", "1.0.0"); v != nil {
				t.Fatalf("stored while the registry failed: %+v", v)
			}
			proxy.Clear()
			eventually(t, "the retried event to be ingested once the registry recovers", func() bool {
				v, _ := s.Version(context.Background(), "acme", "acme/flaky", "1.0.0")
				return v != nil
			})

			proxy.Inject(testenv.Fault{Kind: testenv.Status, Status: http.StatusServiceUnavailable, PathContains: "/acme/down/"})
			if code := post(t, srv.URL, "Bearer "+secret, `{"events":[`+event("down-1", "acme/down", down)+`]}`); code != http.StatusAccepted {
				t.Fatalf("queueing: %d", code)
			}
			var alerts []*store.Alert
			eventually(t, "the event to be quarantined after its last attempt", func() bool {
				alerts, _ = s.Alerts(context.Background(), "acme")
				return len(alerts) > 0
			})
			if len(alerts) != 1 || alerts[0].Type != index.AlertIngestFailed || alerts[0].Name != "acme/down" ||
				!strings.Contains(alerts[0].Message, "3 attempts") || !strings.Contains(alerts[0].Message, "503") {
				t.Fatalf("alerts: %+v", alerts)
			}
			if n := attempts(); n != 3 {
				t.Fatalf("quarantined after %d attempts, want 3", n)
			}
		})
	}
}

// An invalid artifact is quarantined at once; what the registry or the
// store may cure, or what nobody classified, is tried again.
func TestIngestErrorsAreTransientUnlessTheArtifactIsAtFault(t *testing.T) {
	for _, c := range []struct {
		err       error
		transient bool
	}{
		{fmt.Errorf("ingest x: %w: artifactType says Module but the descriptor says Connector", artifact.ErrInvalidExtension), false},
		{fmt.Errorf("ingest x: %w", artifact.ErrUnsafeContent), false},
		{index.Permanent(errors.New("name bound to another publisher")), false},
		{index.Transient(errors.New("evidence not linked yet")), true},
		{index.Transient(fmt.Errorf("wrapped: %w", artifact.ErrInvalidExtension)), true},
		{fmt.Errorf("fetch: %w", context.DeadlineExceeded), true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{errors.New("database is locked (5) (SQLITE_BUSY)"), true},
		{nil, false},
	} {
		if got := index.IsTransient(c.err); got != c.transient {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.transient)
		}
	}
}
