package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// BenchmarkDecisionWithControlList measures what consulting a control list
// adds to a cached install decision: the evidence is collected once and
// the list fetched once (a guard in memory, refreshed each minute), as a
// long-running Factory or a resolution over many candidates sees it. The
// list holds 1,000 entries, none matching. Compare the two sub-benchmarks.
func BenchmarkDecisionWithControlList(b *testing.B) {
	t := &testing.T{}
	w := &world{fixture.NewPolicyWorld(t, reg, "pub")}
	w.T = t
	ref := w.Pub.Publish("bench", fixture.Ext{Name: "acme/bench", Version: "1.0.0"})
	w.Pub.Sign(ref, w.Keys["pub"])
	in := w.input(ref, "2.4.0")
	in.LayerDigest = "sha256:" + fmt.Sprintf("%064x", 1)
	in.ContentDigest = "sha256:" + fmt.Sprintf("%064x", 2)
	op := fixture.NewOperator(b, w.Pub.Remote, w.Dir, "operator")
	listRef := reg.Ref("bench-ops/control:latest")
	var entries []control.Entry
	for i := range 1000 {
		entries = append(entries, control.Entry{ContentDigest: fmt.Sprintf("sha256:%064x", 1000+i)})
	}
	op.Push(listRef, fixture.List(1, time.Now().Add(time.Hour), entries...))
	rules := "trustRoots:\n  - {name: pub, keys: [pub.pub]}\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n    compatibility: required\n"
	for _, tc := range []struct{ name, extra string }{
		{"without", ""},
		{"with", fmt.Sprintf("controlList: {ref: %q, keys: [operator.pub], maxAge: 1h}\n", listRef)},
	} {
		p, err := w.Policy(rules + tc.extra)
		if err != nil {
			b.Fatal(err)
		}
		p.AttachControl(control.Options{Remote: w.Pub.Remote})
		ctx := context.Background()
		d, err := p.Evaluate(ctx, in) // the list fetched, the evidence checked once
		if err != nil || !d.Allowed {
			b.Fatalf("%s: %+v %v", tc.name, d, err)
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				d, err := p.Evaluate(ctx, in)
				if err != nil || !d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
		if tc.extra != "" {
			// The control check alone, as Install re-runs it once the
			// content digest is known.
			b.Run("control-check-only", func(b *testing.B) {
				for b.Loop() {
					if d := p.RecheckContent(ctx, d, in); !d.Allowed {
						b.Fatal(d.Failed())
					}
				}
			})
		}
	}
	_ = policy.CheckControl
}
