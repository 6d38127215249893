package index_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

const secret = "hook-secret"

// world: a store, an ingester with a policy, the webhook behind an HTTP
// server, and a distribution registry that notifies it.
type world struct {
	st     store.Store
	reg    *testenv.Registry
	pub    *fixture.Publisher
	hook   *httptest.Server
	dir    string
	policy *policy.Policy
}

func newWorld(t *testing.T) *world {
	w := &world{dir: t.TempDir()}
	var err error
	if w.st, err = store.Open(context.Background(), "sqlite://"+filepath.Join(w.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.st.Close() })
	wh := &index.Webhook{Secret: secret}
	w.hook = httptest.NewServer(wh)
	t.Cleanup(w.hook.Close)
	w.reg, err = testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL: w.hook.URL + "/api/v1/events/registry", NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.reg.Close() })
	w.pub = fixture.NewPublisher(t, w.reg)
	fixture.KeyPair(t, w.dir, "acme")
	os.WriteFile(filepath.Join(w.dir, "policy.yaml"), []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: acme
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
`), 0o644)
	p, err := policy.Load(context.Background(), filepath.Join(w.dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wh.Events = w.st
	wh.Sources = []index.Source{{Name: "acme", Registry: w.reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Private}}
	wh.Ingester = &index.Ingester{Store: w.st, Policy: p, Remote: func(s *index.Source) remote.Options {
		return remote.Options{PlainHTTP: s.PlainHTTP, RegistryConfig: filepath.Join(w.dir, "config.json")}
	}}
	w.policy = p
	return w
}

// newIngester is another ingester on the world's store and policy.
func newIngester(t *testing.T, w *world) *index.Ingester {
	return &index.Ingester{Store: w.st, Policy: w.policy, Remote: func(s *index.Source) remote.Options {
		return remote.Options{PlainHTTP: s.PlainHTTP, RegistryConfig: filepath.Join(w.dir, "config.json")}
	}}
}

// eventually polls cond for up to 30 s: notifications are asynchronous,
// and a loaded machine running -race is slow. It bounds, it does not time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (w *world) version(t *testing.T, name, version string) *store.Version {
	vs, err := w.st.Versions(context.Background(), "acme", name)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Version == version {
			return v
		}
	}
	return nil
}

func TestWebhookIngestsPushesSignaturesAndMovedTags(t *testing.T) {
	w := newWorld(t)
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/crm", Version: "1.0.0"})
	eventually(t, "the push to be ingested", func() bool { return w.version(t, "acme/crm", "1.0.0") != nil })
	v := w.version(t, "acme/crm", "1.0.0")
	if v.Signed || v.Allowed || v.Visibility != store.Private || !strings.HasSuffix(ref, v.Digest) {
		t.Fatalf("unsigned push stored as %+v", v)
	}
	// The signature's .sig tag push re-verifies the version.
	s, _ := loadSigner(t, filepath.Join(w.dir, "acme.key"))
	w.pub.Sign(ref, s)
	eventually(t, "the signature to be ingested", func() bool {
		v := w.version(t, "acme/crm", "1.0.0")
		return v != nil && v.Signed && v.Allowed
	})
	// A version tag forced to other content keeps the first digest and
	// raises a tag-moved alert.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: acme/crm\n  version: 1.0.0\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "other.txt"), []byte("other content"), 0o644)
	pkg, err := artifact.Pack(context.Background(), dir, artifact.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	repo, _ := artifact.NewRepository(w.reg.Ref("acme/crm"), w.pub.Remote)
	if _, err := artifact.Push(context.Background(), repo, "", pkg, artifact.PushOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a tag-moved alert", func() bool {
		a, _ := w.st.Alerts(context.Background(), "acme")
		return len(a) == 1 && a[0].Type == store.AlertTagMoved && a[0].NewDigest == pkg.Manifest.Digest.String()
	})
	if v := w.version(t, "acme/crm", "1.0.0"); !strings.HasSuffix(ref, v.Digest) {
		t.Fatalf("the moved tag replaced the stored digest: %s", v.Digest)
	}
}

func post(t *testing.T, url, auth, body string) int {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebhookRefusesWithoutTheSecretAndIgnoresDuplicates(t *testing.T) {
	w := newWorld(t)
	ref := w.pub.Publish("", fixture.Ext{Name: "acme/dup", Version: "2.0.0"})
	digest := ref[strings.Index(ref, "@")+1:]
	env := fmt.Sprintf(`{"events":[{"id":"evt-manual-1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"repository":"acme/dup","url":"http://%s/v2/acme/dup/manifests/%s","tag":"2.0.0"},"request":{"host":%q}}]}`,
		digest, w.reg.Host, digest, w.reg.Host)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + secret} {
		if code := post(t, w.hook.URL, auth, env); code != http.StatusUnauthorized {
			t.Fatalf("auth %q: %d, want 401", auth, code)
		}
	}
	if code := post(t, w.hook.URL, "Bearer "+secret, `{"events":[{"action":"push"}]}`); code != http.StatusBadRequest {
		t.Fatalf("event without id: %d", code)
	}
	for i := 0; i < 3; i++ { // the same event three times
		if code := post(t, w.hook.URL, "Bearer "+secret, env); code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	if seen, _ := w.st.EventSeen(context.Background(), "evt-manual-1"); !seen {
		t.Fatal("event not recorded")
	}
	vs, _ := w.st.Versions(context.Background(), "acme", "acme/dup")
	if len(vs) != 1 {
		t.Fatalf("duplicate deliveries stored %d versions", len(vs))
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"events":[{"id":"1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","repository":"acme/x","url":"http://r/v2/acme/x/manifests/sha256:ab","tag":"1.0.0"}}]}`))
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"events":[{"id":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := index.DecodeEnvelope(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range events {
			if e.ID == "" || e.Target.Repository == "" {
				t.Fatalf("accepted an event without id or repository: %+v", e)
			}
		}
	})
}

// Events arrive in any order: the signature's event before the manifest's.
func TestWebhookHandlesOutOfOrderEvents(t *testing.T) {
	w := newWorld(t)
	quiet, err := testenv.StartDistribution(testenv.DistributionOptions{}) // sends nothing itself
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	pub := fixture.NewPublisher(t, quiet)
	ref := pub.Publish("", fixture.Ext{Name: "acme/ooo", Version: "3.0.0"})
	s, _ := loadSigner(t, filepath.Join(w.dir, "acme.key"))
	pub.Sign(ref, s)
	digest := ref[strings.Index(ref, "@")+1:]
	event := func(id, tag string) string {
		return fmt.Sprintf(`{"id":%q,"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"acme/ooo","url":"http://%s/v2/acme/ooo/manifests/x","tag":%q}}`, id, quiet.Host, tag)
	}
	sigTag := strings.Replace(digest, ":", "-", 1) + ".sig"
	// Point the webhook at the quiet registry too.
	hook := &index.Webhook{Secret: secret, Sources: []index.Source{{Name: "q", Registry: quiet.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}},
		Ingester: newIngester(t, w), Events: w.st}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	if code := post(t, srv.URL, "Bearer "+secret, `{"events":[`+event("e2", sigTag)+`,`+event("e1", "3.0.0")+`]}`); code != http.StatusAccepted {
		t.Fatalf("out-of-order batch: %d", code)
	}
	v := w.version(t, "acme/ooo", "3.0.0")
	if v == nil || !v.Signed || !v.Allowed || v.Digest != digest {
		t.Fatalf("after out-of-order events: %+v", v)
	}
}
