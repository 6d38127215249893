package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// snapshotWorld is an operator's index over a registry of its own (so the
// test can take it away), a publisher's signed extensions on it, and the
// operator's key.
type snapshotWorld struct {
	t                                *testing.T
	dir, config, operatorKey, policy string
	reg                              *testenv.Registry
	refs                             map[string]string // name@version → repository@digest
}

func newSnapshotWorld(t *testing.T) *snapshotWorld {
	t.Helper()
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	w := &snapshotWorld{t: t, dir: t.TempDir(), reg: reg, refs: map[string]string{}}
	pub := fixture.NewPublisher(t, reg)
	signer, _, _ := fixture.KeyPair(t, w.dir, "pub")
	fixture.KeyPair(t, w.dir, "operator")
	w.operatorKey = filepath.Join(w.dir, "operator.key")
	t.Setenv("COSIGN_PASSWORD", "pw")
	idx := fixture.NewIndex(t, reg, pub.Remote)
	for _, e := range []fixture.Ext{
		{Name: "acme/base", Version: "1.0.0"},
		{Name: "acme/crm", Version: "1.0.0"},
		{Name: "acme/crm", Version: "1.1.0", Deps: map[string]string{"acme/base": "^1.0"}},
		{Name: "acme/crm", Version: "2.0.0", Factory: ">=3.0.0"},
	} {
		ref := pub.Publish("snap", e)
		pub.Sign(ref, signer)
		idx.Ingest(ref)
		w.refs[e.Name+"@"+e.Version] = ref
	}
	w.config = filepath.Join(w.dir, "index.yaml")
	os.WriteFile(w.config, []byte("store: "+idx.StoreURL+"\nwebhookSecret: s\n"), 0o644)
	w.policy = filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(w.policy, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: acme
    match: {repositories: ["%s/snap/**"]}
    signatures: {trustRoots: [publishers]}
    compatibility: required
`, reg.Host)), 0o644)
	return w
}

type snapshotOut struct {
	Scope       string
	Version     int64
	Versions    int
	Digest      string
	RootVersion int64
	RootFile    string
	Expires     map[string]time.Time
}

// snapshot runs mkt index snapshot with args after the common ones.
func (w *snapshotWorld) snapshot(args ...string) snapshotOut {
	w.t.Helper()
	r := mustMkt(w.t, append([]string{"--format", "json", "index", "snapshot", "--config", w.config, "--key", w.operatorKey}, args...)...)
	var out snapshotOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		w.t.Fatalf("index snapshot printed %q: %v", r.stdout, err)
	}
	return out
}

// TestSnapshotInstallsAirGappedFromAnOCILayout is the air-gapped Factory:
// the operator writes a signed snapshot into an OCI layout, the extensions
// are copied there with their signatures, the registry goes away (no
// registry, no index reachable), and install resolves from the snapshot,
// verifies every signature by the policy and unpacks from the layout.
func TestSnapshotInstallsAirGappedFromAnOCILayout(t *testing.T) {
	w := newSnapshotWorld(t)
	layout := filepath.Join(w.dir, "airgap")
	root := filepath.Join(w.dir, "root.json")
	out := w.snapshot("--to", layout+":snapshot", "--to-oci-layout", "--write-root", root)
	if out.Version != 1 || out.Versions != 4 || out.Scope != "public" || out.RootVersion != 1 || out.RootFile != root {
		t.Fatalf("snapshot: %+v", out)
	}
	for k, ref := range w.refs {
		tag := strings.NewReplacer("/", "-", "@", "-").Replace(k)
		mustMkt(t, "copy", "--plain-http", ref, layout+":"+tag, "--to-oci-layout")
	}
	// The network goes: nothing answers at the registry's address, and
	// no index was ever given.
	w.reg.Close()
	cache := filepath.Join(w.dir, "cache")
	ext, lock := filepath.Join(w.dir, "ext"), filepath.Join(w.dir, "extensions.lock")
	offline := []string{"--snapshot", layout + ":snapshot", "--oci-layout", "--snapshot-root", root, "--snapshot-cache", cache,
		"--policy", w.policy, "--factory-version", "2.4.0"}
	r := mustMkt(t, append([]string{"install", "acme/crm", "-o", ext, "--lockfile", lock}, offline...)...)
	for _, want := range []string{"acme/crm 1.1.0", "acme/base 1.0.0"} {
		name, version, _ := strings.Cut(want, " ")
		b, err := os.ReadFile(filepath.Join(ext, name, "README.md"))
		if err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("installed %s: %q, %v\n%s", name, b, err, r.stderr)
		}
		if l, _ := os.ReadFile(lock); !strings.Contains(string(l), w.refs[name+"@"+version]) {
			t.Fatalf("the lockfile lacks %s's original reference %s:\n%s", name, w.refs[name+"@"+version], l)
		}
	}
	// resolve explains the newer version passed over, offline too.
	r = mustMkt(t, append([]string{"resolve", "acme/crm", "--explain"}, offline...)...)
	if !strings.Contains(r.stdout, "2.0.0") || !strings.Contains(r.stdout, "compatib") {
		t.Fatalf("resolve --explain from the snapshot: %s", r.stdout)
	}
	// The policy still decides, on the signatures read from the layout:
	// a policy trusting another key refuses everything.
	other := filepath.Join(w.dir, "other.yaml")
	fixture.KeyPair(t, w.dir, "stranger")
	b, _ := os.ReadFile(w.policy)
	os.WriteFile(other, []byte(strings.Replace(string(b), "pub.pub", "stranger.pub", 1)), 0o644)
	r = mkt(t, "install", "acme/crm", "-o", filepath.Join(w.dir, "ext2"), "--lockfile", filepath.Join(w.dir, "other.lock"),
		"--snapshot", layout+":snapshot", "--oci-layout", "--snapshot-root", root, "--snapshot-cache", cache, "--policy", other, "--factory-version", "2.4.0")
	if r.code != 1 || !strings.Contains(r.stderr, "signature") {
		t.Fatalf("install under a policy that trusts another key: %+v", r)
	}
}

// TestSnapshotRefusesRollbackExpiryAndTampering: a client that trusted
// snapshot 2 refuses snapshot 1; an expired timestamp is refused; a
// catalog changed after signing is refused; each error names the TUF
// check that failed, with the snapshotRefused code.
func TestSnapshotRefusesRollbackExpiryAndTampering(t *testing.T) {
	w := newSnapshotWorld(t)
	layout := filepath.Join(w.dir, "airgap")
	root := filepath.Join(w.dir, "root.json")
	w.snapshot("--to", layout+":v1", "--to-oci-layout", "--write-root", root)
	if v2 := w.snapshot("--to", layout+":v2", "--to-oci-layout"); v2.Version != 2 {
		t.Fatalf("the second snapshot is version %d", v2.Version)
	}
	mustMkt(t, "copy", "--plain-http", w.refs["acme/base@1.0.0"], layout+":base", "--to-oci-layout")
	cache := filepath.Join(w.dir, "cache")
	resolveFrom := func(tag string) mktRun {
		return mkt(t, "--format", "json", "--plain-http", "resolve", "acme/base", "--snapshot", layout+":"+tag, "--oci-layout",
			"--snapshot-root", root, "--snapshot-cache", cache, "--factory-version", "2.4.0")
	}
	refused := func(r mktRun, check string) {
		t.Helper()
		var doc struct{ Error errorBody }
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("printed %q: %v", r.stdout, err)
		}
		if r.code != 1 || doc.Error.Code != codeSnapshotRefused || !strings.Contains(doc.Error.Message, "TUF's "+check+" check") || doc.Error.Hint == "" {
			t.Fatalf("want a refusal by the %s check: exit %d, %+v", check, r.code, doc.Error)
		}
	}
	if r := resolveFrom("v2"); r.code != 0 {
		t.Fatalf("snapshot 2: %+v", r)
	}

	t.Run("rollback", func(t *testing.T) { refused(resolveFrom("v1"), "rollback") })

	t.Run("expired", func(t *testing.T) {
		exp := w.snapshot("--to", layout+":short", "--to-oci-layout", "--timestamp-expiry", "1s").Expires["timestamp"]
		for !time.Now().After(exp) { // expiry has a resolution of a second
			time.Sleep(50 * time.Millisecond)
		}
		refused(resolveFrom("short"), "freeze")
	})

	t.Run("tampered", func(t *testing.T) {
		// A mirror in between swaps acme/base's digest for its own in the
		// catalog, and re-packs the artifact with valid OCI digests.
		last := w.snapshot("--to", layout+":good", "--to-oci-layout")
		files := layoutFiles(t, layout, "good")
		cat := string(files[snapshot.CatalogTarget])
		_, digest, _ := strings.Cut(w.refs["acme/base@1.0.0"], "@")
		files[snapshot.CatalogTarget] = []byte(strings.Replace(cat, digest, "sha256:"+strings.Repeat("e", 64), 1))
		dst, _, err := artifact.OpenLayout(layout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.Push(context.Background(), dst, "tampered", files, "public", last.Version, time.Now()); err != nil {
			t.Fatal(err)
		}
		refused(resolveFrom("tampered"), "mix-and-match")
		if r := resolveFrom("good"); r.code != 0 {
			t.Fatalf("the untampered snapshot after the refusal: %+v", r)
		}
	})

	t.Run("another operator's root", func(t *testing.T) {
		fixture.KeyPair(t, w.dir, "rogue")
		r := mkt(t, "--format", "json", "index", "snapshot", "--config", w.config, "--key", filepath.Join(w.dir, "rogue.key"), "--to", layout+":rogue", "--to-oci-layout")
		if r.code != 1 || !strings.Contains(r.stdout, "does not trust this key") {
			t.Fatalf("a snapshot signed with another key than the scope's root: %+v", r)
		}
	})
}

// layoutFiles reads the files of the snapshot artifact at layout:tag.
func layoutFiles(t *testing.T, layout, tag string) snapshot.Files {
	t.Helper()
	ctx := context.Background()
	store, _, err := artifact.OpenLayout(layout)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := store.Resolve(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	b, err := content.FetchAll(ctx, store, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	files := snapshot.Files{}
	for _, l := range m.Layers {
		if files[l.Annotations[ocispec.AnnotationTitle]], err = content.FetchAll(ctx, store, l); err != nil {
			t.Fatal(err)
		}
	}
	return files
}
