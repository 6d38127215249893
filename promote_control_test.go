package marketplace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestPromoteHonoursTheControlList: a stage policy that names a control
// list is honoured by promote as by verify: a clean version is promoted
// (the list consulted, not "no guard attached"), and the blocked files
// republished under another name by another publisher are refused by
// their content digest, with nothing copied into the stage's registry.
func TestPromoteHonoursTheControlList(t *testing.T) {
	ctx := context.Background()
	w := newKillWorld(t, "promokill")
	good := w.pub.Publish("promokill", fixture.Ext{Name: "acme/good", Version: "1.0.0", Files: map[string]string{"module/main.yaml": "fine: true\n"}})
	w.pub.Sign(good, w.acme)
	w.pub.Attest(good, w.rev, "review", approve)
	w.op.Push(w.listRef, fixture.List(1, time.Now().Add(24*time.Hour)))
	stage := reg.Host + "/promokill-mirror/stage"
	p, err := marketplace.Promote(ctx, good, marketplace.PromoteOptions{Stage: "public", Registry: stage, Policy: w.loadPolicy(t), Remote: w.pub.Remote})
	if err != nil || !p.Promoted {
		var checks any
		if p != nil {
			checks = p.Decision.Checks
		}
		t.Fatalf("a clean version under a policy with a control list: %v %+v", err, checks)
	}
	w.block(t, 2)
	p, err = marketplace.Promote(ctx, w.gad, marketplace.PromoteOptions{Stage: "public", Registry: stage, Policy: w.loadPolicy(t), Remote: w.pub.Remote})
	if !errors.Is(err, marketplace.ErrNotPromoted) || p == nil || p.Promoted {
		t.Fatalf("blocked files republished as mallory/gadget promoted: %v %+v", err, p)
	}
	repo, err := artifact.NewRepository(stage+"/mallory/gadget:3.1.0", w.pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Resolve(ctx, "3.1.0"); err == nil {
		t.Fatal("the blocked content was copied into the stage's registry")
	}
}
