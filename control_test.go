package marketplace_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// killWorld is a malicious extension, acme/evil, signed and reviewed by
// its publisher; the same files republished as mallory/gadget by another
// publisher (the policy trusts both); an operator with a control list;
// and a policy that consults it.
type killWorld struct {
	pub, mal  *fixture.Publisher
	op        *fixture.Operator
	evil, gad string // repository@digest
	listRef   string
	policy    string
	dir       string
	acme, rev *signing.Signer
}

var evilFiles = map[string]string{"module/main.yaml": "exfiltrate: [secrets]\n", "README.md": "# handy module\n"}

func newKillWorld(t *testing.T, prefix string) *killWorld {
	dir := t.TempDir()
	w := &killWorld{pub: fixture.NewPublisher(t, reg), mal: fixture.NewPublisher(t, reg), dir: dir}
	acme, _, _ := fixture.KeyPair(t, dir, "acme")
	mallory, _, _ := fixture.KeyPair(t, dir, "mallory")
	rev, _, _ := fixture.KeyPair(t, dir, "rev")
	w.acme, w.rev = acme, rev
	w.op = fixture.NewOperator(t, w.pub.Remote, dir, "operator")
	w.evil = w.pub.Publish(prefix, fixture.Ext{Name: "acme/evil", Version: "1.0.0", Files: evilFiles})
	w.pub.Sign(w.evil, acme)
	w.pub.Attest(w.evil, rev, "review", approve)
	// Renamed, republished by another publisher, in another repository:
	// every digest but the content digest differs.
	w.gad = w.mal.Publish(prefix+"-mirror", fixture.Ext{Name: "mallory/gadget", Version: "3.1.0", Files: evilFiles})
	w.mal.Sign(w.gad, mallory)
	w.mal.Attest(w.gad, rev, "review", approve)
	w.listRef = reg.Ref(prefix + "-ops/control:latest")
	w.policy = filepath.Join(dir, "policy.yaml")
	os.WriteFile(w.policy, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [acme.pub, mallory.pub]}
  - {name: review, keys: [rev.pub]}
rules:
  - name: all
    match: {repositories: ["%s/%s/**", "%s/%s-mirror/**"]}
    signatures: {trustRoots: [publishers]}
    attestations:
      - {type: review, trustRoots: [review], condition: 'predicate.result == "approved"'}
    lifecycle: {authorities: [review]}
controlList: {ref: "%s", keys: [operator.pub], maxAge: 1h}
`, reg.Host, prefix, reg.Host, prefix, w.listRef)), 0o644)
	return w
}

// block publishes a control list with sequence seq blocking acme/evil as
// `mkt control add` makes the entry: by its digests and its name.
func (w *killWorld) block(t *testing.T, seq int64) {
	e, err := control.EntryFor(context.Background(), w.evil, w.pub.Remote, control.Block, "exfiltrates secrets", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.op.Push(w.listRef, fixture.List(seq, time.Now().Add(24*time.Hour), *e))
}

func (w *killWorld) loadPolicy(t *testing.T) *policy.Policy {
	p, err := policy.Load(context.Background(), w.policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func controlCheck(d *policy.Decision) *policy.Check {
	for i := range d.Checks {
		if d.Checks[i].Name == policy.CheckControl {
			return &d.Checks[i]
		}
	}
	return nil
}

func TestControlListBlocksTheSameFilesUnderAnyNameInVerifyAndInstall(t *testing.T) {
	ctx := context.Background()
	w := newKillWorld(t, "kill")
	w.op.Push(w.listRef, fixture.List(1, time.Now().Add(24*time.Hour)))
	// Before the block, both are allowed, and the decision says it asked.
	for _, ref := range []string{w.evil, w.gad} {
		d, err := marketplace.Verify(ctx, ref, w.loadPolicy(t), "2.4.0", w.pub.Remote)
		if err != nil || !d.Allowed || controlCheck(d) == nil || !controlCheck(d).Passed {
			t.Fatalf("before the block %s: %+v %v", ref, d, err)
		}
	}
	w.block(t, 2)
	p := w.loadPolicy(t) // a long-running Factory holds one policy; a fresh one asks at once
	for ref, by := range map[string]string{w.evil: "matched by digest", w.gad: "matched by contentDigest"} {
		d, err := marketplace.Verify(ctx, ref, p, "2.4.0", w.pub.Remote)
		if err != nil {
			t.Fatal(err)
		}
		c := controlCheck(d)
		if d.Allowed || c == nil || c.Passed || !strings.Contains(c.Reason, "blocked by the control list sequence 2: exfiltrates secrets") || !strings.Contains(c.Reason, by) {
			t.Fatalf("Verify %s: want denied by the control list (%s), got %+v", ref, by, d.Checks)
		}
	}
	for name, prefix := range map[string]string{"acme/evil": "kill", "mallory/gadget": "kill-mirror"} {
		o := marketplace.Options{Registry: reg.Host + "/" + prefix, Remote: w.pub.Remote, Policy: p, FactoryVersion: "2.4.0",
			Dir: filepath.Join(t.TempDir(), "ext"), Lockfile: filepath.Join(t.TempDir(), "extensions.lock")}
		_, err := marketplace.Install(ctx, []resolve.Requirement{{Name: name}}, o)
		if err == nil || !strings.Contains(err.Error(), "blocked by the control list") {
			t.Fatalf("Install %s: want refused by the control list, got %v", name, err)
		}
		if _, statErr := os.Stat(filepath.Join(o.Dir, filepath.FromSlash(name))); !os.IsNotExist(statErr) {
			t.Fatalf("Install %s wrote the blocked files: %v", name, statErr)
		}
		if _, statErr := os.Stat(o.Lockfile); !os.IsNotExist(statErr) {
			t.Fatalf("Install %s wrote a lockfile", name)
		}
	}
}

func TestControlListFailsClosedInTheGoAPI(t *testing.T) {
	ctx := context.Background()
	w := newKillWorld(t, "closed")
	// No list published at all: nothing is allowed, and the decision says why.
	d, err := marketplace.Verify(ctx, w.evil, w.loadPolicy(t), "2.4.0", w.pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if c := controlCheck(d); d.Allowed || c == nil || !strings.Contains(c.Reason, "fail closed") {
		t.Fatalf("no control list: want denied, failing closed, got %+v", d.Checks)
	}
	// A list signed by someone else: the same.
	intruder := fixture.NewOperator(t, w.pub.Remote, t.TempDir(), "intruder")
	intruder.Push(w.listRef, fixture.List(9, time.Now().Add(time.Hour)))
	d, err = marketplace.Verify(ctx, w.evil, w.loadPolicy(t), "2.4.0", w.pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if c := controlCheck(d); d.Allowed || c == nil || !strings.Contains(c.Reason, "not signed by a trusted key") {
		t.Fatalf("forged control list: want denied, got %+v", d.Checks)
	}
}

func TestAuditFindsBlockedAndYankedInstalledExtensions(t *testing.T) {
	ctx := context.Background()
	w := newKillWorld(t, "audit")
	w.op.Push(w.listRef, fixture.List(1, time.Now().Add(24*time.Hour)))
	// A second, harmless extension that its reviewer will yank.
	ok := w.pub.Publish("audit", fixture.Ext{Name: "acme/fine", Version: "1.0.0"})
	w.pub.Sign(ok, w.acme)
	w.pub.Attest(ok, w.rev, "review", approve)
	dir, lock := filepath.Join(t.TempDir(), "ext"), filepath.Join(t.TempDir(), "extensions.lock")
	o := marketplace.Options{Registry: reg.Host + "/audit", Remote: w.pub.Remote, Policy: w.loadPolicy(t), FactoryVersion: "2.4.0", Dir: dir, Lockfile: lock}
	if _, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/evil"}, {Name: "acme/fine"}}, o); err != nil {
		t.Fatal(err)
	}
	audit := func() (*marketplace.AuditReport, error) {
		return marketplace.Audit(ctx, marketplace.AuditOptions{Dir: dir, Lockfile: lock, Policy: w.loadPolicy(t), Remote: w.pub.Remote})
	}
	if rep, err := audit(); err != nil || rep.MustGo != 0 {
		t.Fatalf("right after install: %+v %v", rep, err)
	}
	w.block(t, 2)
	w.pub.Attest(ok, w.rev, "lifecycle", `{"status":"yanked","reason":"data loss on upgrade"}`)
	rep, err := audit()
	if !errors.Is(err, marketplace.ErrAuditFailed) || rep == nil || rep.MustGo != 2 {
		t.Fatalf("want both to go, got %+v %v", rep, err)
	}
	why := map[string]string{}
	for _, f := range rep.Extensions {
		why[f.Name] = strings.Join(f.Reasons, "; ")
	}
	if !strings.Contains(why["acme/evil"], "control: blocked by the control list sequence 2: exfiltrates secrets") {
		t.Fatalf("acme/evil: %s", why["acme/evil"])
	}
	if !strings.Contains(why["acme/fine"], "lifecycle: yanked: data loss on upgrade") {
		t.Fatalf("acme/fine: %s", why["acme/fine"])
	}
	// Files changed on disk since install are reported too.
	os.WriteFile(filepath.Join(dir, "acme", "fine", "README.md"), []byte("patched\n"), 0o644)
	rep, _ = audit()
	for _, f := range rep.Extensions {
		if f.Name == "acme/fine" && (!f.Modified || !strings.Contains(strings.Join(f.Reasons, ";"), "files changed on disk since install")) {
			t.Fatalf("a changed file is not reported: %+v", f)
		}
	}
}
