package index_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
	"oras.land/oras-go/v2"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// evidencePolicy trusts acme's key for signatures and for reviews, and
// allows only what it signed and approved.
const evidencePolicy = `apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: acme
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
    attestations:
      - type: review
        trustRoots: [acme]
        condition: 'predicate.result == "approved"'
`

// evidenceWorld is an index (store, ingester, webhook, crawler) fed by the
// stock registry running as its own process. Its notifications go through
// a relay that can play the index being down: while down, notifications
// are answered and dropped, so they are lost for good (a named fake of the
// lost delivery; distribution would otherwise redeliver).
type evidenceWorld struct {
	dir     string
	st      store.Store
	reg     *testenv.Registry
	pub     *fixture.Publisher
	signer  *signing.Signer
	src     index.Source
	hook    atomic.Pointer[index.Webhook] // nil: the index is down
	dropped atomic.Int64
}

func newEvidenceWorld(t *testing.T, notify bool) *evidenceWorld {
	t.Helper()
	w := openEvidenceWorld(t)
	var err error
	opts := testenv.DistributionOptions{}
	if notify {
		relay := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if h := w.hook.Load(); h != nil {
				h.ServeHTTP(rw, r)
				return
			}
			w.dropped.Add(1)
			rw.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(relay.Close)
		opts.NotifyURL = relay.URL + "/api/v1/events/registry"
		opts.NotifyHeaders = http.Header{"Authorization": {"Bearer " + secret}}
	}
	if w.reg, err = testenv.StartDistributionProcess(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.reg.Close() })
	w.pub = fixture.NewPublisher(t, w.reg)
	w.src = index.Source{Name: "acme", Registry: w.reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
		Tenant: "acme", Visibility: store.Public, Interval: time.Second}
	if notify {
		w.start(t)
	}
	return w
}

// openEvidenceWorld is a world with its store, key pair and policy file,
// and no registry yet.
func openEvidenceWorld(t *testing.T) *evidenceWorld {
	t.Helper()
	w := &evidenceWorld{dir: t.TempDir()}
	var err error
	if w.st, err = store.Open(context.Background(), "sqlite://"+filepath.Join(w.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.st.Close() })
	w.signer, _, _ = fixture.KeyPair(t, w.dir, "acme")
	if err := os.WriteFile(filepath.Join(w.dir, "policy.yaml"), []byte(evidencePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// newReferrersWorld is a world on go-containerregistry's registry, which
// has the OCI referrers API, without notifications; the index is not
// started.
func newReferrersWorld(t *testing.T) *evidenceWorld {
	t.Helper()
	w := openEvidenceWorld(t)
	var err error
	if w.reg, err = testenv.StartGGCR(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.reg.Close() })
	w.pub = fixture.NewPublisher(t, w.reg)
	w.src = index.Source{Name: "acme", Registry: w.reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	return w
}

// start brings the index up: a fresh ingester and webhook on the store, as
// a restarted `mkt index serve` has.
func (w *evidenceWorld) start(t *testing.T) *index.Ingester {
	t.Helper()
	p, err := policy.Load(context.Background(), filepath.Join(w.dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in := &index.Ingester{Store: w.st, Policy: p, Remote: func(s *index.Source) remote.Options {
		return remote.Options{PlainHTTP: s.PlainHTTP, RegistryConfig: filepath.Join(w.dir, "config.json")}
	}}
	w.hook.Store(&index.Webhook{Secret: secret, Sources: []index.Source{w.src}, Ingester: in, Events: w.st})
	return in
}

func (w *evidenceWorld) stored(t *testing.T, name, version string) *store.Version {
	v, err := w.st.Version(context.Background(), "acme", name, version)
	if err != nil && err != store.ErrNotFound {
		t.Fatal(err)
	}
	return v
}

// within polls cond every 5 ms for at most d and returns how long it took
// to hold; it fails the test when it never does.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPushThenSignBackToBackIsShownSigned: distribution notifies of the
// .sig tag before it links the tag, so an index that reads the tag finds
// nothing and stores "unsigned" for good (issue 9, item 1: 6 of 6 tries).
// The index reads the signature manifest the event names instead.
func TestPushThenSignBackToBackIsShownSigned(t *testing.T) {
	w := newEvidenceWorld(t, true)
	const versions = 20
	var took []time.Duration
	for i := range versions {
		version := fmt.Sprintf("1.0.%d", i)
		ref := w.pub.Publish("", fixture.Ext{Name: "acme/racy", Version: version})
		w.pub.Sign(ref, w.signer)
		took = append(took, within(t, time.Second, "acme/racy@"+version+" shown signed after its signature push", func() bool {
			v := w.stored(t, "acme/racy", version)
			return v != nil && v.Signed
		}))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("signature push → shown signed over %d versions: p50 %s, max %s", versions, took[versions/2], took[versions-1])
}

// TestReferrerSignaturesReachTheIndex: `mkt sign --referrers` pushes the
// signature untagged, by digest, with the version as its subject (and, on
// a registry without the referrers API, updates the sha256-<hex> referrers
// tag). Neither event used to reach the index.
func TestReferrerSignaturesReachTheIndex(t *testing.T) {
	w := newEvidenceWorld(t, true)
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/refs", Version: "1.0.0"})
	within(t, 30*time.Second, "acme/refs@1.0.0 ingested", func() bool { return w.stored(t, "acme/refs", "1.0.0") != nil })
	if _, err := w.pub.Client.Sign(context.Background(), ref, w.signer, signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "acme/refs@1.0.0 shown signed after a referrer signature", func() bool {
		v := w.stored(t, "acme/refs", "1.0.0")
		return v != nil && v.Signed && strings.Contains(string(v.Evidence), `"source":"referrer"`)
	})
}

// TestRevocationWhileIndexDownIsSeenByTheNextCrawl: a review revoked while
// the index was down, its notification lost, used to stay
// reviewed/allowed for good, since the crawl compared version tags only.
func TestRevocationWhileIndexDownIsSeenByTheNextCrawl(t *testing.T) {
	w := newEvidenceWorld(t, true)
	ctx := context.Background()
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/revoked", Version: "1.0.0"})
	w.pub.Sign(ref, w.signer)
	now := time.Now().UTC()
	review := func(result string, at time.Time) string {
		return fmt.Sprintf(`{"reviewer":"security","result":%q,"level":"public","time":%q}`, result, at.Format(time.RFC3339))
	}
	w.pub.Attest(ref, w.signer, "review", review("approved", now.Add(-2*time.Minute)))
	within(t, 30*time.Second, "acme/revoked@1.0.0 reviewed and allowed", func() bool {
		v := w.stored(t, "acme/revoked", "1.0.0")
		return v != nil && v.Reviewed && v.Allowed
	})

	w.hook.Store(nil) // the index goes down
	w.pub.Attest(ref, w.signer, "review", review("revoked", now.Add(-time.Minute)))
	within(t, 30*time.Second, "the revocation's notification dropped", func() bool { return w.dropped.Load() > 0 })
	if v := w.stored(t, "acme/revoked", "1.0.0"); !v.Reviewed || !v.Allowed {
		t.Fatalf("the lost notification changed the index: %+v", v)
	}

	in := w.start(t) // back up: one crawl interval later, the crawl has run
	st, err := (&index.Crawler{Ingester: in, Store: w.st}).Reconcile(ctx, &w.src)
	if err != nil || st.Ingested != 1 || st.Errors != 0 {
		t.Fatalf("crawl after the restart: %+v %v", st, err)
	}
	if v := w.stored(t, "acme/revoked", "1.0.0"); v.Reviewed || v.Allowed {
		t.Fatalf("after the crawl the revoked version is still reviewed=%v allowed=%v", v.Reviewed, v.Allowed)
	}
}

// TestCrawlOnlySourcePicksUpALaterSignature: on a registry that sends no
// notifications, a version crawled before it was signed stayed unsigned;
// the crawl now compares evidence tags too, and an unchanged registry
// still costs one request per tag.
func TestCrawlOnlySourcePicksUpALaterSignature(t *testing.T) {
	w := newEvidenceWorld(t, false)
	ctx := context.Background()
	proxy, err := testenv.StartFaultProxy(w.reg.Host) // counts requests
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	w.src.Registry = proxy.Host
	in := w.start(t)
	c := &index.Crawler{Ingester: in, Store: w.st}
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/later", Version: "1.0.0"})
	w.pub.Publish("", fixture.Ext{Name: "acme/later", Version: "1.1.0"})
	if st, err := c.Reconcile(ctx, &w.src); err != nil || st.Ingested != 2 {
		t.Fatalf("first crawl: %+v %v", st, err)
	}
	if v := w.stored(t, "acme/later", "1.0.0"); v == nil || v.Signed {
		t.Fatalf("before signing: %+v", v)
	}
	w.pub.Sign(ref, w.signer)
	if st, err := c.Reconcile(ctx, &w.src); err != nil || st.Ingested != 1 || st.Unchanged != 1 {
		t.Fatalf("crawl after signing: %+v %v", st, err)
	}
	if v := w.stored(t, "acme/later", "1.0.0"); !v.Signed {
		t.Fatalf("the crawl did not pick up the signature: %+v", v)
	}
	proxy.Clear()
	st, err := c.Reconcile(ctx, &w.src)
	if err != nil || st.Unchanged != 2 || st.Ingested != 0 {
		t.Fatalf("unchanged crawl: %+v %v", st, err)
	}
	// Three tags (two versions, one .sig): a HEAD each, the catalog and
	// one tag list.
	if n := proxy.Requests(); n > 3+2 {
		t.Fatalf("unchanged crawl of 3 tags cost %d requests, want at most 5", n)
	}
}

// TestMalformedEvidenceTagIsSkippedNotFailed: a tag named sha256-.att is
// not evidence. It used to fail its notification batch with a 500, which
// distribution retries for ever, blocking every later notification.
func TestMalformedEvidenceTagIsSkippedNotFailed(t *testing.T) {
	w := newEvidenceWorld(t, false)
	ctx := context.Background()
	w.start(t)
	repo, err := orasremote.NewRepository(w.reg.Ref("acme/odd"))
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.v1", oras.PackManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, desc, "sha256-.att"); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"events":[{"id":"odd-1","action":"push","target":{"mediaType":%q,"digest":%q,"repository":"acme/odd","url":"http://%s/v2/acme/odd/manifests/%s","tag":"sha256-.att"}}]}`,
		desc.MediaType, desc.Digest, w.reg.Host, desc.Digest)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/events/registry", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	rec := httptest.NewRecorder()
	w.hook.Load().ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("webhook answered %d for a malformed evidence tag: %s", rec.Code, rec.Body)
	}
	w.pub.Publish("", fixture.Ext{Name: "acme/odd", Version: "1.0.0"})
	st, err := (&index.Crawler{Ingester: w.hook.Load().Ingester, Store: w.st}).Reconcile(ctx, &w.src)
	if err != nil || st.Errors != 0 || st.Ingested != 1 {
		t.Fatalf("crawl beside a malformed evidence tag: %+v %v", st, err)
	}
}

// TestCrawlComparesReferrersTheAPIListed: on a registry with the OCI
// referrers API (go-containerregistry's), a review attested as a referrer
// has no tag at all, so a crawl that compared tags only never saw it on a
// registry without notifications. The crawl asks the API for each version
// (one request more per version there) and re-verifies when its answer
// changes; an unchanged registry then costs a HEAD and a referrers list
// per version.
func TestCrawlComparesReferrersTheAPIListed(t *testing.T) {
	ctx := context.Background()
	w := newReferrersWorld(t)
	proxy, err := testenv.StartFaultProxy(w.reg.Host) // counts requests
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	w.src.Registry = proxy.Host
	c := &index.Crawler{Ingester: w.start(t), Store: w.st}

	ref := w.pub.Publish("", fixture.Ext{Name: "acme/api", Version: "1.0.0"})
	if _, err := w.pub.Client.Sign(ctx, ref, w.signer, signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Reconcile(ctx, &w.src); err != nil || st.Ingested != 1 {
		t.Fatalf("first crawl: %+v %v", st, err)
	}
	if v := w.stored(t, "acme/api", "1.0.0"); v == nil || !v.Signed || v.Reviewed {
		t.Fatalf("after the first crawl: %+v", v)
	}
	review := fmt.Sprintf(`{"reviewer":"security","result":"approved","level":"public","time":%q}`, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	if _, err := w.pub.Client.Attest(ctx, ref, w.signer, signing.ReviewV1, []byte(review), signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Reconcile(ctx, &w.src); err != nil || st.Ingested != 1 {
		t.Fatalf("crawl after a referrer attestation: %+v %v", st, err)
	}
	if v := w.stored(t, "acme/api", "1.0.0"); !v.Reviewed {
		t.Fatalf("the crawl did not pick up the referrer review: %+v", v)
	}
	proxy.Clear()
	if st, err := c.Reconcile(ctx, &w.src); err != nil || st.Unchanged != 1 || st.Ingested != 0 {
		t.Fatalf("unchanged crawl: %+v %v", st, err)
	}
	// One version tag: its HEAD and its referrers list, the catalog and
	// one tag list.
	if n := proxy.Requests(); n > 4 {
		t.Fatalf("unchanged crawl of 1 tag cost %d requests, want at most 4", n)
	}
}
