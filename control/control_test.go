package control_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var reg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&reg, testenv.DistributionOptions{})))
}

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	fp = "3333333333333333333333333333333333333333333333333333333333333333"
)

func TestParseRefusesBadListsNamingTheField(t *testing.T) {
	head := "apiVersion: marketplace.connectsoft.io/v1\nkind: ControlList\nsequence: 3\nexpires: 2030-01-01T00:00:00Z\n"
	entry := func(s string) string {
		return head + "entries:\n  - " + s + "\n    action: block\n    reason: bad\n    time: 2026-01-01T00:00:00Z\n"
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", head + "entris: []\n", `unknown field "entris"`},
		{"no sequence", "apiVersion: marketplace.connectsoft.io/v1\nkind: ControlList\nexpires: 2030-01-01T00:00:00Z\n", "sequence: must be at least 1"},
		{"no expires", "apiVersion: marketplace.connectsoft.io/v1\nkind: ControlList\nsequence: 1\n", "expires: required"},
		{"wrong kind", strings.Replace(head, "ControlList", "Policy", 1), `kind: "Policy": want ControlList`},
		{"bad digest", entry("digest: sha256:abc"), "entries[0].digest: \"sha256:abc\" is not a sha256 digest"},
		{"bad content digest", entry("contentDigest: md5:00"), "entries[0].contentDigest"},
		{"bad key", entry("publisherKey: ABC"), "entries[0].publisherKey"},
		{"bad name", entry("name: Acme"), "entries[0].name"},
		{"bad versions", entry("name: acme/x\n    versions: [\"~~1\"]"), "entries[0].versions[0]"},
		{"versions without name", entry("digest: " + d1 + "\n    versions: [1.0.0]"), "entries[0].versions: versions narrow a name"},
		{"selects nothing", head + "entries:\n  - action: block\n    reason: x\n    time: 2026-01-01T00:00:00Z\n", "entries[0]: selects nothing"},
		{"bad action", strings.Replace(entry("name: acme/x"), "action: block", "action: delete", 1), `entries[0].action: "delete": want block or yank`},
		{"no reason", strings.Replace(entry("name: acme/x"), "reason: bad", "reason: \" \"", 1), "entries[0].reason: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := control.Parse([]byte(tc.doc), "control.yaml")
			if !errors.Is(err, control.ErrInvalidList) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "control.yaml") {
				t.Fatalf("want an invalid-list error naming %q, got %v", tc.want, err)
			}
		})
	}
}

func TestMatchBySelector(t *testing.T) {
	l, err := control.Parse([]byte(`apiVersion: marketplace.connectsoft.io/v1
kind: ControlList
sequence: 1
expires: 2030-01-01T00:00:00Z
entries:
  - {name: acme/old, versions: ["<1.2.0"], action: yank, reason: old, time: 2026-01-01T00:00:00Z}
  - {digest: `+d1+`, action: block, reason: malware, time: 2026-01-01T00:00:00Z}
  - {contentDigest: `+d2+`, action: block, reason: same files, time: 2026-01-01T00:00:00Z}
  - {publisherKey: `+fp+`, action: block, reason: stolen key, time: 2026-01-01T00:00:00Z}
`), "l.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    control.Subject
		by   string
	}{
		{"manifest digest", control.Subject{Name: "x/y", Version: "1.0.0", Digest: d1}, "digest"},
		{"content under another name", control.Subject{Name: "evil/renamed", Version: "9.9.9", Digest: d2, ContentDigest: d2}, "contentDigest"},
		{"publisher key", control.Subject{Name: "x/y", Version: "1.0.0", Signers: []string{"aa", fp}}, "publisherKey"},
		{"name in range", control.Subject{Name: "acme/old", Version: "1.1.9"}, "name"},
		{"name out of range", control.Subject{Name: "acme/old", Version: "1.2.0"}, ""},
		{"nothing", control.Subject{Name: "x/y", Version: "1.0.0", Digest: d2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := l.Match(tc.s)
			switch {
			case tc.by == "" && len(hits) > 0:
				t.Fatalf("matched %+v", hits[0])
			case tc.by != "" && (len(hits) == 0 || hits[0].By != tc.by):
				t.Fatalf("want a hit by %s, got %+v", tc.by, hits)
			}
		})
	}
}

// world is an operator and a guard's view of one list reference.
type world struct {
	op  *fixture.Operator
	ref string
	ro  remote.Options
}

func newWorld(t *testing.T) *world {
	ro := remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
	return &world{op: fixture.NewOperator(t, ro, t.TempDir(), "operator"), ref: reg.Ref("ops/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + ":latest"), ro: ro}
}

func (w *world) guard(o control.Options, maxAge time.Duration) *control.Guard {
	o.Remote = w.ro
	return control.NewGuard(control.Config{Ref: w.ref, Keys: []*signing.Key{w.op.Key}, MaxAge: maxAge}, o)
}

func TestStockCosignVerifiesThePushedList(t *testing.T) {
	w := newWorld(t)
	p := w.op.Push(w.ref, fixture.List(1, time.Now().Add(time.Hour), control.Entry{Digest: d1}))
	cosign, err := testenv.NewTool("cosign", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := cosign.Run(context.Background(), "verify", "--key", w.op.KeyFile, "--insecure-ignore-tlog=true", "--allow-http-registry", w.ref)
	if err != nil || !strings.Contains(out, p.Digest) {
		t.Fatalf("stock cosign verify refused the control list: %v\n%s", err, out)
	}
	// And another key does not verify it: stock cosign agrees it is forged.
	_, _, other := fixture.KeyPair(t, t.TempDir(), "intruder")
	if out, err := cosign.Run(context.Background(), "verify", "--key", other, "--insecure-ignore-tlog=true", "--allow-http-registry", w.ref); err == nil {
		t.Fatalf("stock cosign verified the list with a key that did not sign it:\n%s", out)
	}
}

func TestForgedListIsRefused(t *testing.T) {
	w := newWorld(t)
	intruder := fixture.NewOperator(t, w.ro, t.TempDir(), "intruder")
	intruder.Push(w.ref, fixture.List(1, time.Now().Add(time.Hour)))
	_, err := control.Fetch(context.Background(), w.ref, []*signing.Key{w.op.Key}, w.ro)
	if !errors.Is(err, control.ErrUnsigned) {
		t.Fatalf("want ErrUnsigned for a list signed by another key, got %v", err)
	}
	g := w.guard(control.Options{}, time.Hour)
	if _, err := g.Current(context.Background()); !errors.Is(err, control.ErrUnsigned) || !strings.Contains(err.Error(), "fail closed") {
		t.Fatalf("a guard with only a forged list must fail closed, got %v", err)
	}
}

func TestRolledBackListIsRefusedAcrossRuns(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	old := w.op.Push(strings.Replace(w.ref, ":latest", ":old", 1), fixture.List(3, time.Now().Add(time.Hour)))
	w.op.Push(w.ref, fixture.List(5, time.Now().Add(time.Hour), control.Entry{Digest: d1}))
	state := control.DiskState{Dir: t.TempDir()}
	first := w.guard(control.Options{State: state}, time.Hour)
	if cur, err := first.Current(ctx); err != nil || cur.List.Sequence != 5 {
		t.Fatalf("first run: %+v %v", cur, err)
	}
	// The registry now serves sequence 3 under the tag.
	w.op.Retag(old.Reference, w.ref)
	if _, err := first.Refresh(ctx); !errors.Is(err, control.ErrRollback) {
		t.Fatalf("refresh: want ErrRollback, got %v", err)
	}
	// A new process (a later CLI run) remembers sequence 5 on disk.
	second := w.guard(control.Options{State: state}, time.Hour)
	cur, err := second.Current(ctx)
	if err != nil || cur.List.Sequence != 5 || len(cur.List.Match(control.Subject{Digest: d1})) != 1 {
		t.Fatalf("second run: want sequence 5 in force (its block kept), got %+v %v", cur, err)
	}
	if _, err := second.Refresh(ctx); !errors.Is(err, control.ErrRollback) || !strings.Contains(err.Error(), "sequence 3") {
		t.Fatalf("second run refresh: want ErrRollback naming sequence 3, got %v", err)
	}
}

// TestUnreadableStateFailsClosed: a guard that cannot read the highest
// sequence seen accepts no list (it could not tell a rollback), rather
// than whatever the registry serves.
func TestUnreadableStateFailsClosed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.op.Push(w.ref, fixture.List(5, time.Now().Add(time.Hour)))
	dir := t.TempDir()
	if _, err := w.guard(control.Options{State: control.DiskState{Dir: dir}}, time.Hour).Current(ctx); err != nil {
		t.Fatal(err)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(saved) != 1 {
		t.Fatalf("saved state: %v", saved)
	}
	if err := os.WriteFile(saved[0], []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := w.guard(control.Options{State: control.DiskState{Dir: dir}}, time.Hour)
	if cur, err := g.Current(ctx); err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "fail closed") {
		t.Fatalf("with its state unreadable the guard must fail closed saying why, got %+v %v", cur, err)
	}
	// Once the state is removed (the operator's choice), the list counts again.
	os.Remove(saved[0])
	if cur, err := g.Current(ctx); err != nil || cur.List.Sequence != 5 {
		t.Fatalf("after the damaged state was removed: %+v %v", cur, err)
	}
}

func TestExpiredListIsRefused(t *testing.T) {
	w := newWorld(t)
	w.op.Push(w.ref, fixture.List(1, time.Now().Add(time.Hour)))
	later := time.Now().Add(2 * time.Hour)
	g := w.guard(control.Options{Now: func() time.Time { return later }}, 24*time.Hour)
	_, err := g.Current(context.Background())
	if !errors.Is(err, control.ErrExpired) || !strings.Contains(err.Error(), "fail closed") {
		t.Fatalf("want ErrExpired, failing closed, got %v", err)
	}
}

func TestMaxAgeFailsClosedWhenTheRegistryIsUnreachable(t *testing.T) {
	proxy, err := testenv.StartFaultProxy(reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	w := newWorld(t)
	w.op.Push(w.ref, fixture.List(1, time.Now().Add(72*time.Hour), control.Entry{Digest: d1}))
	w.ref = strings.Replace(w.ref, reg.Host, proxy.Host, 1)
	now := time.Now()
	clock := func() time.Time { return now }
	g := w.guard(control.Options{Now: clock, Refresh: time.Minute}, time.Hour)
	ctx := context.Background()
	if _, err := g.Current(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Inject(testenv.Fault{Kind: testenv.Status, Status: 503})
	// Within maxAge the last list still counts, and says the refresh failed.
	now = now.Add(30 * time.Minute)
	if cur, err := g.Current(ctx); err != nil || cur.List.Sequence != 1 {
		t.Fatalf("within maxAge: %+v %v", cur, err)
	}
	now = now.Add(31 * time.Minute)
	_, err = g.Current(ctx)
	if !errors.Is(err, control.ErrStale) || !strings.Contains(err.Error(), "maxAge 1h0m0s") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("past maxAge with the registry down: want ErrStale naming maxAge and the failure, got %v", err)
	}
	// The registry back: the next refresh (a minute on) makes it count again.
	proxy.Clear()
	now = now.Add(time.Minute)
	if _, err := g.Current(ctx); err != nil {
		t.Fatalf("registry back: %v", err)
	}
}

func TestPushRefusesASequenceNotAboveTheCurrentOne(t *testing.T) {
	w := newWorld(t)
	w.op.Push(w.ref, fixture.List(4, time.Now().Add(time.Hour)))
	l := fixture.List(4, time.Now().Add(time.Hour))
	_, err := control.Push(context.Background(), l, w.ref, w.op.Signer, w.ro)
	if err == nil || !strings.Contains(err.Error(), "sequence 4 is not above the 4 already there") {
		t.Fatalf("want a refusal naming both sequences, got %v", err)
	}
}
