package index_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// holdGate holds the first ingest whose evidence read matches after its
// registry read (the ingest's fault-injection hook), until released.
type holdGate struct {
	match    func(v *store.Version) bool
	once     sync.Once
	held     chan struct{} // closed when the matching ingest is held
	released chan struct{}
}

func newHoldGate(match func(v *store.Version) bool) *holdGate {
	return &holdGate{match: match, held: make(chan struct{}), released: make(chan struct{})}
}

func (g *holdGate) hook(_ context.Context, v *store.Version) {
	if !g.match(v) {
		return
	}
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return
	}
	close(g.held)
	<-g.released
}

// queueDrained reports whether no ingest job of the index's queue is
// waiting, running or due for a retry.
func queueDrained(t *testing.T, st store.Store) bool {
	t.Helper()
	db, _ := st.(store.QueueStore).QueueDB()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n); err != nil {
		t.Fatalf("count the queue's unfinished jobs: %v", err)
	}
	return n == 0
}

// stagedReplica is a second index on s's store (PostgreSQL): its own
// ingester, queue workers and API; the registry notifies s only, and the
// queue hands the events to either.
func stagedReplica(t *testing.T, s *stagedIndex) *stagedIndex {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := *s
	r.base = "http://" + ln.Addr().String()
	r.srv, err = index.NewServer(context.Background(), s.cfg, remote.Options{RegistryConfig: filepath.Join(s.cfg.Dir, "config.json")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve the replica: %v", err)
		}
	})
	return &r
}

// Two reviews of one version pushed one after the other make two events
// and two ingests; the first one's (which read one review) is held after
// its registry read until the second one's (which read both) is stored,
// then let go. Its write must not take the stored evidence back a step:
// the second curator's approval, which lifted quarantine, stays, in the
// store and in every answer of the API, on SQLite, on PostgreSQL, and
// with two replicas sharing the PostgreSQL database, either of which may
// run either ingest. Without the generation's compare-and-swap the held
// ingest wrote last and the version went back to quarantine.
func TestStaleEvidenceReadNeverOverwritesALaterOne(t *testing.T) {
	for _, tc := range []struct {
		name     string
		url      func(t *testing.T) string
		replicas bool
	}{
		{"sqlite", func(*testing.T) string { return "" }, false},
		{"postgres", func(t *testing.T) string { return storetest.PostgresSchema(t) }, false},
		{"postgres-replicas", func(t *testing.T) string { return storetest.PostgresSchema(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveStagedIndexOn(t, tc.url(t), publicStagePolicy)
			indexes := []*stagedIndex{s}
			if tc.replicas {
				indexes = append(indexes, stagedReplica(t, s))
			}
			ref := s.publishApproved(t)

			gate := newHoldGate(func(v *store.Version) bool {
				ev := string(v.Evidence)
				return strings.Contains(ev, `"reviewer":"curator-1"`) && !strings.Contains(ev, `"reviewer":"curator-2"`)
			})
			for _, x := range indexes {
				x.srv.Crawler.Ingester.SetFaultAfterRead(gate.hook)
			}
			released := false
			defer func() {
				if !released {
					close(gate.released)
				}
			}()
			s.pub.Attest(ref, s.keys["c1"], "review", curatorReview("curator-1", "approved"))
			<-gate.held // A has read one curator's approval and waits to write it
			s.pub.Attest(ref, s.keys["c2"], "review", curatorReview("curator-2", "approved"))
			eventually(t, "the later ingest (both curators) stored", func() bool {
				v := s.stored(t)
				return v != nil && strings.Contains(string(v.Evidence), `"reviewer":"curator-2"`)
			})
			if v := s.stored(t); v.Quarantined {
				t.Fatalf("both curators' approvals did not lift quarantine: %s", v.Decision)
			}
			close(gate.released)
			released = true
			eventually(t, "the held ingest finished", func() bool { return queueDrained(t, s.srv.Store) })

			v := s.stored(t)
			if !strings.Contains(string(v.Evidence), `"reviewer":"curator-1"`) || !strings.Contains(string(v.Evidence), `"reviewer":"curator-2"`) || v.Quarantined || !v.Reviewed {
				t.Fatalf("the held, older read overwrote the later one: quarantined %v reviewed %v, evidence %s", v.Quarantined, v.Reviewed, v.Evidence)
			}
			for i, x := range indexes {
				for _, who := range []string{"", "globex", "acme", "reviewer"} {
					if !x.sees(t, who) {
						t.Fatalf("replica %d: %q does not see the released version after the stale write", i, who)
					}
				}
				if _, body := x.get(t, "reviewer", "/api/v1/extensions/acme/widget"); !strings.Contains(body, `"quarantined":false`) || !strings.Contains(body, "curator-2") {
					t.Fatalf("replica %d: details do not answer the later state: %s", i, body)
				}
			}
		})
	}
}

// Reviews pushed back to back, with no wait between them, are as many
// events whose ingests run at once and finish in any order: once the
// queue has drained, the stored evidence holds every one of them (the
// last event's read saw them all, and nothing older overwrote it).
func TestBackToBackReviewsAllStand(t *testing.T) {
	const n = 8
	for _, tc := range queueStores {
		t.Run(tc.name, func(t *testing.T) {
			s := serveStagedIndexOn(t, tc.url(t), publicStagePolicy)
			ref := s.pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
			s.pub.Sign(ref, s.keys["acme"])
			keys := []string{"c1", "c2", "c3", "pipeline"}
			for i := range n {
				s.pub.Attest(ref, s.keys[keys[i%len(keys)]], "review", curatorReview(fmt.Sprintf("curator-%d", i), "approved"))
			}
			all := func(v *store.Version) bool {
				if v == nil {
					return false
				}
				for i := range n {
					if !strings.Contains(string(v.Evidence), fmt.Sprintf(`"reviewer":"curator-%d"`, i)) {
						return false
					}
				}
				return true
			}
			eventually(t, "every review ingested and the queue drained", func() bool {
				return queueDrained(t, s.srv.Store) && all(s.stored(t))
			})
			if v := s.stored(t); !all(v) {
				t.Fatalf("after the queue drained, a review is missing: %s", v.Evidence)
			}
		})
	}
}

// The queue numbers an event when it accepts it, not when a worker starts
// it: an event names the manifest to read by digest, so the job of an
// older event that starts late (held here before it reads anything, until
// the newer event's ingest is stored) still reads the older manifest, and
// must not win because it started last.
func TestAnOlderEventIngestedLaterNeverOverwritesANewerOne(t *testing.T) {
	for _, tc := range queueStores {
		t.Run(tc.name, func(t *testing.T) {
			s := serveStagedIndexOn(t, tc.url(t), publicStagePolicy)
			ref := s.publishApproved(t)
			var once sync.Once
			held, release := make(chan struct{}), make(chan struct{})
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			s.srv.Crawler.Ingester.SetFaultBeforeRead(func(context.Context, string, string) {
				first := false
				once.Do(func() { first = true })
				if first {
					close(held)
					<-release
				}
			})
			s.pub.Attest(ref, s.keys["c1"], "review", curatorReview("curator-1", "approved"))
			<-held // the first curator's event is queued and its ingest has not read anything
			s.pub.Attest(ref, s.keys["c2"], "review", curatorReview("curator-2", "approved"))
			eventually(t, "the newer event's ingest (both curators) stored", func() bool {
				v := s.stored(t)
				return v != nil && strings.Contains(string(v.Evidence), `"reviewer":"curator-2"`) && !v.Quarantined
			})
			close(release)
			released = true
			eventually(t, "the older event's ingest finished", func() bool { return queueDrained(t, s.srv.Store) })
			if v := s.stored(t); !strings.Contains(string(v.Evidence), `"reviewer":"curator-2"`) || v.Quarantined {
				t.Fatalf("the older event, ingested last, overwrote the newer one: quarantined %v, evidence %s", v.Quarantined, v.Evidence)
			}
			if !s.sees(t, "") {
				t.Fatal("anonymous callers do not see the released version after the older event's ingest")
			}
		})
	}
}

// publishApproved publishes acme/widget 1.0.0, signed by acme and approved
// by the pipeline, and waits until the index has ingested both.
func (s *stagedIndex) publishApproved(t *testing.T) string {
	t.Helper()
	ref := s.pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	s.pub.Sign(ref, s.keys["acme"])
	s.pub.Attest(ref, s.keys["pipeline"], "review", pipelineReview("approved", ""))
	eventually(t, "the signature and the pipeline's approval ingested", func() bool {
		v := s.stored(t)
		return v != nil && v.Signed && strings.Contains(string(v.Evidence), `"reviewer":"pipeline"`)
	})
	return ref
}
