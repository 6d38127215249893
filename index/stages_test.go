package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// stagedIndex is a served index (webhook, queue, crawler, API) whose one
// source, tenant acme, is in the public stage, with the registry notifying
// it: the path evidence arrives by in production.
type stagedIndex struct {
	srv    *index.Server
	base   string
	reg    *testenv.Registry
	pub    *fixture.Publisher
	keys   map[string]*signing.Signer
	tokens map[string]string // by who: acme, globex, reviewer (connectsoft), reader (connectsoft)
	cfg    *index.Config
}

// publicStagePolicy: acme's signature, the pipeline's approval without a
// critical finding, and two of three curators' public approvals.
const publicStagePolicy = `apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub], publishers: [acme]}
  - {name: pipeline, keys: [pipeline.pub]}
  - {name: curators, keys: [c1.pub, c2.pub, c3.pub]}
rules:
  - name: public
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
    attestations:
      - type: review
        trustRoots: [pipeline]
        condition: 'predicate.reviewer == "pipeline" && predicate.result == "approved" && (!has(predicate.findings) || predicate.findings.all(f, f.severity != "critical"))'
      - type: review
        trustRoots: [curators]
        threshold: 2
        condition: 'predicate.result == "approved" && predicate.level == "public"'
`

func serveStagedIndex(t *testing.T) *stagedIndex {
	t.Helper()
	return serveStagedIndexWith(t, publicStagePolicy)
}

// serveStagedIndexWith is serveStagedIndex with another public stage
// policy (keys acme, pipeline, c1, c2, c3).
func serveStagedIndexWith(t *testing.T, stagePolicy string) *stagedIndex {
	t.Helper()
	return serveStagedIndexOn(t, "", stagePolicy)
}

// serveStagedIndexOn is serveStagedIndexWith on the store storeURL names
// ("" for SQLite in the test's directory).
func serveStagedIndexOn(t *testing.T, storeURL, stagePolicy string) *stagedIndex {
	t.Helper()
	s := &stagedIndex{keys: map[string]*signing.Signer{}, tokens: map[string]string{}}
	ln, base, reg := notifyingRegistry(t)
	s.base, s.reg = base, reg
	dir := t.TempDir()
	for _, k := range []string{"acme", "pipeline", "c1", "c2", "c3"} {
		s.keys[k], _, _ = fixture.KeyPair(t, dir, k)
	}
	os.WriteFile(filepath.Join(dir, "public-policy.yaml"), []byte(stagePolicy), 0o644)
	if storeURL == "" {
		storeURL = "sqlite://" + filepath.Join(dir, "index.db")
	}
	cfg := &index.Config{Store: storeURL, WebhookSecret: secret, Dir: dir, Operator: "connectsoft",
		Stages: []index.Stage{{Name: "public", Policy: "public-policy.yaml"}},
		Sources: []index.Source{{Name: "acme", Registry: s.reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"},
			Tenant: "acme", Visibility: store.Public, Interval: time.Hour, Stage: "public"}}}
	s.cfg = cfg
	var err error
	s.srv, err = index.NewServer(context.Background(), cfg, remote.Options{RegistryConfig: filepath.Join(dir, "config.json")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for who, tt := range map[string]struct{ tenant, role string }{"acme": {"acme", "publisher"}, "globex": {"globex", "reader"},
		"reviewer": {"connectsoft", "reviewer"}, "reader": {"connectsoft", "reader"}} {
		tok, rec, err := index.NewToken(tt.tenant, []string{tt.role})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.srv.Store.PutToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		s.tokens[who] = tok
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

// get reads path as who ("" anonymous) and returns the status and body.
func (s *stagedIndex) get(t *testing.T, who, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+s.tokens[who])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sees reports whether who finds acme/widget@1.0.0 in search, details,
// resolution and the web catalog, and fails when the four disagree. A
// resolution that finds the version and refuses it (422: the stage's
// policy denies it) has seen it; one that does not find it answers 404,
// as for a name never published.
func (s *stagedIndex) sees(t *testing.T, who string) bool {
	t.Helper()
	_, search := s.get(t, who, "/api/v1/extensions?q=widget")
	var page struct{ Total int }
	json.Unmarshal([]byte(search), &page)
	detailsCode, details := s.get(t, who, "/api/v1/extensions/acme/widget")
	resolveCode, _ := s.get(t, who, "/api/v1/resolve?name=acme/widget&factory=2.5.0")
	_, web := s.get(t, who, "/?q=widget")
	webDetailsCode, _ := s.get(t, who, "/extensions/acme/widget")
	seen := []bool{page.Total == 1, detailsCode == 200 && strings.Contains(details, `"1.0.0"`), resolveCode != 404,
		strings.Contains(web, `data-name="acme/widget"`), webDetailsCode == 200}
	for _, b := range seen[1:] {
		if b != seen[0] {
			t.Fatalf("%q sees acme/widget inconsistently (search, details, resolve, web, web details): %v\n%s", who, seen, details)
		}
	}
	return seen[0]
}

func (s *stagedIndex) stored(t *testing.T) *store.Version {
	t.Helper()
	v, err := s.srv.Store.Version(context.Background(), "acme", "acme/widget", "1.0.0")
	if err != nil {
		return nil
	}
	return v
}

func pipelineReview(result, severity string) string {
	findings := ""
	if severity != "" {
		findings = fmt.Sprintf(`,"findings":[{"severity":%q,"message":"AWS access key in config/settings.json","location":"config/settings.json:3"}]`, severity)
	}
	return fmt.Sprintf(`{"reviewer":"pipeline","result":%q,"level":"public","checks":[{"name":"secrets","passed":%v}]%s,"time":%q}`,
		result, severity != "critical", findings, time.Now().UTC().Format(time.RFC3339))
}

func curatorReview(who, result string) string {
	return fmt.Sprintf(`{"reviewer":%q,"result":%q,"level":"public","notes":"read the code","time":%q}`, who, result, time.Now().UTC().Format(time.RFC3339))
}

// A version that has not passed its stage's policy is quarantined: only
// its tenant and reviewers see it, everywhere (search, details, resolve,
// web); the publisher approving its own version with its own key lifts
// nothing; the reviewers' approvals, arriving later as attestations, lift
// it through the ordinary evidence path (the registry's notification).
func TestQuarantineHoldsUntilTheStagePolicyPasses(t *testing.T) {
	s := serveStagedIndex(t)
	ref := s.pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	s.pub.Sign(ref, s.keys["acme"])
	eventually(t, "the signed version ingested", func() bool {
		v := s.stored(t)
		return v != nil && v.Signed
	})
	v := s.stored(t)
	if !v.Quarantined || v.Stage != "public" {
		t.Fatalf("an unreviewed version: stage %q quarantined %v", v.Stage, v.Quarantined)
	}
	for _, who := range []string{"", "globex", "reader"} {
		if s.sees(t, who) {
			t.Fatalf("%q sees a quarantined version of another tenant", who)
		}
	}
	for _, who := range []string{"acme", "reviewer"} {
		if !s.sees(t, who) {
			t.Fatalf("%q does not see the quarantined version", who)
		}
	}
	if _, body := s.get(t, "acme", "/api/v1/extensions/acme/widget"); !strings.Contains(body, `"quarantined":true`) || !strings.Contains(body, `"stage":"public"`) {
		t.Fatalf("details do not show the stage and quarantine: %s", body)
	}

	// The review queue: reviewers only; the pipeline's findings in it.
	for who, want := range map[string]int{"": 401, "acme": 403, "reader": 403} {
		if code, body := s.get(t, who, "/api/v1/reviews?stage=public&status=pending"); code != want {
			t.Fatalf("%q reading the review queue: %d, want %d: %s", who, code, want, body)
		}
	}
	s.pub.Attest(ref, s.keys["pipeline"], "review", pipelineReview("rejected", "critical"))
	var queue index.ReviewPage
	eventually(t, "the pipeline's findings in the review queue", func() bool {
		_, body := s.get(t, "reviewer", "/api/v1/reviews?stage=public&status=pending")
		queue = index.ReviewPage{}
		json.Unmarshal([]byte(body), &queue)
		return queue.Total == 1 && queue.Items[0].Pipeline != nil
	})
	it := queue.Items[0]
	if it.Name != "acme/widget" || !it.Pipeline.Verified || it.Pipeline.Result != "rejected" || len(it.Pipeline.Findings) != 1 ||
		it.Pipeline.Findings[0].Severity != "critical" || len(it.Failed) == 0 {
		t.Fatalf("queue item: %+v", it)
	}
	if _, page := s.get(t, "reviewer", "/reviews?stage=public"); !strings.Contains(page, `data-name="acme/widget"`) || !strings.Contains(page, "AWS access key") {
		t.Fatalf("the review queue page lacks the version or its finding:\n%s", page)
	}
	if code, _ := s.get(t, "acme", "/reviews"); code != 403 {
		t.Fatalf("a publisher token opened the review queue page: %d", code)
	}

	// The publisher approves its own version, with its own key, as a
	// pipeline and as a curator: not a key of those roots, nothing lifts.
	s.pub.Attest(ref, s.keys["acme"], "review", pipelineReview("approved", ""))
	s.pub.Attest(ref, s.keys["acme"], "review", curatorReview("acme", "approved"))
	s.pub.Attest(ref, s.keys["pipeline"], "review", pipelineReview("approved", ""))
	s.pub.Attest(ref, s.keys["c1"], "review", curatorReview("curator-1", "approved"))
	defer func() {
		if t.Failed() {
			t.Logf("evidence: %s", s.stored(t).Evidence)
		}
	}()
	eventually(t, "the first curator's approval ingested", func() bool {
		v := s.stored(t)
		return v != nil && strings.Contains(string(v.Evidence), `"reviewer":"curator-1"`)
	})
	if v := s.stored(t); !v.Quarantined {
		t.Fatalf("one curator and the publisher's own approvals lifted quarantine: %s", v.Decision)
	}
	if s.sees(t, "") {
		t.Fatal("anonymous callers see a version one curator approved")
	}
	s.pub.Attest(ref, s.keys["c2"], "review", curatorReview("curator-2", "approved"))
	eventually(t, "the second curator's approval lifting quarantine", func() bool {
		v := s.stored(t)
		return v != nil && !v.Quarantined
	})
	for _, who := range []string{"", "globex", "reader", "acme", "reviewer"} {
		if !s.sees(t, who) {
			t.Fatalf("%q does not see the released version", who)
		}
	}
	if _, body := s.get(t, "reviewer", "/api/v1/reviews?stage=public&status=pending"); !strings.Contains(body, `"total":0`) {
		t.Fatalf("the released version is still pending: %s", body)
	}
	if _, body := s.get(t, "reviewer", "/api/v1/reviews?status=passed&stage="+url.QueryEscape("public")); !strings.Contains(body, `"total":1`) {
		t.Fatalf("the released version is not listed as passed: %s", body)
	}
}

// A stage policy with `compatibility: required` (as the public example,
// examples/phases/public, has) is decided at ingest without a Factory
// version: the index cannot know which Factory will ask. The version leaves
// quarantine once everything else passes, and resolution still checks the
// Factory version each caller asks for against the version's range.
func TestAStageRequiringCompatibilityReleasesAVersion(t *testing.T) {
	s := serveStagedIndexWith(t, publicStagePolicy+"    compatibility: required\n")
	ref := s.pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0", Factory: ">=2.0.0 <3.0.0"})
	s.pub.Sign(ref, s.keys["acme"])
	// One piece of evidence at a time, each ingested before the next: the
	// point here is the decision, not the order events are ingested in.
	for _, e := range []struct{ key, predicate, seen string }{
		{"pipeline", pipelineReview("approved", ""), `"reviewer":"pipeline"`},
		{"c1", curatorReview("curator-1", "approved"), `"reviewer":"curator-1"`},
		{"c2", curatorReview("curator-2", "approved"), `"reviewer":"curator-2"`},
	} {
		s.pub.Attest(ref, s.keys[e.key], "review", e.predicate)
		eventually(t, e.key+"'s review ingested", func() bool {
			v := s.stored(t)
			return v != nil && strings.Contains(string(v.Evidence), e.seen)
		})
	}
	v := s.stored(t)
	if v.Quarantined {
		t.Fatalf("a version that passes everything but a Factory version the index cannot know stays quarantined: %s", v.Decision)
	}
	var d struct {
		Checks []struct{ Name, Reason string }
	}
	if err := json.Unmarshal(v.Decision, &d); err != nil {
		t.Fatal(err)
	}
	if c := d.Checks[len(d.Checks)-1]; c.Name != "compatibility" || c.Reason != "checked at resolution: the Factory version asking must satisfy >=2.0.0 <3.0.0" {
		t.Fatalf("the stored decision does not say compatibility is checked at resolution: %+v", d.Checks)
	}
	eventually(t, "the released version in the catalog", func() bool {
		code, _ := s.get(t, "", "/api/v1/extensions/acme/widget")
		return code == 200
	})
	if !s.sees(t, "") {
		t.Fatal("anonymous callers do not see the released version")
	}
	if code, body := s.get(t, "globex", "/api/v1/resolve?name=acme/widget&factory=2.5.0"); code != 200 {
		t.Fatalf("resolving for a compatible Factory: %d %s", code, body)
	}
	if code, body := s.get(t, "globex", "/api/v1/resolve?name=acme/widget&factory=3.1.0"); code != 422 || !strings.Contains(body, "3.1.0") {
		t.Fatalf("resolving for an incompatible Factory: %d %s, want 422 naming 3.1.0", code, body)
	}
}

// A stage whose policy is missing at start is a config error, never an
// index that lets everything through.
func TestStagesConfigIsChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "index.yaml")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, c := range []struct{ body, want string }{
		{"store: sqlite://x.db\nstages: [{name: staging, policy: p.yaml}]\n", `"staging": want internal, enterprise or public`},
		{"store: sqlite://x.db\nstages: [{name: public}]\n", "stages[0].policy"},
		{"store: sqlite://x.db\nstages: [{name: public, policy: p.yaml}, {name: public, policy: q.yaml}]\n", "defined twice"},
		{"store: sqlite://x.db\nsources: [{name: a, registry: r, repositories: [\"**\"], tenant: a, visibility: public, stage: enterprise}]\n", `"enterprise" is not one of the stages`},
	} {
		if _, err := index.LoadConfig(write(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
	cfg, err := index.LoadConfig(write("store: sqlite://x.db\nstages: [{name: public, policy: missing.yaml}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := index.NewServer(context.Background(), cfg, remote.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), "stage public") {
		t.Fatalf("a stage policy that does not load: %v", err)
	}
}

// A released version that its publisher yanks stays released: the yank is
// a later statement about a version its stage admitted, not a failed
// review. Everyone who saw it still finds it, marked yanked (so its
// dependents' owners find it and its impact), no reviewer is asked to
// review it again, and resolution refuses it.
func TestAYankDoesNotQuarantineAReleasedVersion(t *testing.T) {
	s := serveStagedIndex(t)
	ref := s.pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	s.pub.Sign(ref, s.keys["acme"])
	for _, e := range []struct{ key, predicate, seen string }{
		{"pipeline", pipelineReview("approved", ""), `"reviewer":"pipeline"`},
		{"c1", curatorReview("curator-1", "approved"), `"reviewer":"curator-1"`},
		{"c2", curatorReview("curator-2", "approved"), `"reviewer":"curator-2"`},
	} {
		s.pub.Attest(ref, s.keys[e.key], "review", e.predicate)
		eventually(t, e.key+"'s review ingested", func() bool {
			v := s.stored(t)
			return v != nil && strings.Contains(string(v.Evidence), e.seen)
		})
	}
	if v := s.stored(t); v.Quarantined {
		t.Fatalf("the reviewed version is still quarantined: %s", v.Decision)
	}
	s.pub.Attest(ref, s.keys["acme"], "lifecycle", `{"status":"yanked","reason":"CVE-2026-9: leaks tokens"}`)
	eventually(t, "the yank ingested", func() bool {
		v := s.stored(t)
		return v != nil && v.Lifecycle == "yanked"
	})
	v := s.stored(t)
	if v.Quarantined || v.Allowed {
		t.Fatalf("a yanked released version: quarantined %v, allowed %v, want released and refused: %s", v.Quarantined, v.Allowed, v.Decision)
	}
	for _, who := range []string{"", "globex", "acme", "reviewer"} {
		if !s.sees(t, who) {
			t.Fatalf("%q no longer sees the yanked version", who)
		}
		if _, body := s.get(t, who, "/api/v1/extensions/acme/widget"); !strings.Contains(body, `"lifecycle":"yanked"`) {
			t.Fatalf("%q: details do not mark the version yanked: %s", who, body)
		}
	}
	if code, body := s.get(t, "globex", "/api/v1/resolve?name=acme/widget&factory=2.5.0"); code == 200 {
		t.Fatalf("a yanked version resolves: %s", body)
	}
	if _, body := s.get(t, "reviewer", "/api/v1/reviews?stage=public&status=pending"); !strings.Contains(body, `"total":0`) {
		t.Fatalf("the yank sent the version back to the review queue: %s", body)
	}
}
