package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/signing"
)

// CheckControl is the control list: the operator's kill switch (package
// control). It is in a decision only when the policy names a controlList.
const CheckControl = "control"

// ControlVerdict is what the control list said about a version, beside
// the control check, for callers that act on it (the index's
// control.blocked event): the list in force and the entry that matched.
type ControlVerdict struct {
	// Sequence and List (the list's manifest digest) name the list.
	Sequence int64  `json:"sequence"`
	List     string `json:"list"`
	// Action is block or yank; empty when no entry matched.
	Action string `json:"action,omitempty"`
	// Entry is the matching entry's index, By the selector that matched,
	// Reason the entry's reason.
	Entry  int    `json:"entry,omitempty"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// controlList is a policy's controlList: parsed, then given keys by
// LoadKeys and a guard by AttachControl.
type controlList struct {
	spec   ControlListSpec
	maxAge time.Duration
	keys   []*signing.Key

	mu    sync.Mutex
	guard *control.Guard
}

func (ps *parser) controlList(at string, c *ControlListSpec) {
	cl := &controlList{spec: *c, maxAge: control.DefaultMaxAge}
	if c.Ref == "" {
		ps.add(at+".ref", "required: the list's reference, e.g. registry.example.com/connectsoft/control:latest")
	} else if r, err := artifact.ParseReference(c.Ref); err != nil {
		ps.add(at+".ref", "%v", err)
	} else if r.Reference == "" {
		ps.add(at+".ref", "%q names no tag: give the tag the operator pushes to (e.g. :latest)", c.Ref)
	}
	if len(c.Keys) == 0 {
		ps.add(at+".keys", "name at least one operator key: the list counts only when one of them signed it")
	}
	if c.MaxAge != "" {
		d, err := time.ParseDuration(c.MaxAge)
		switch {
		case err != nil:
			ps.add(at+".maxAge", "%q is not a duration (e.g. 24h, 30m)", c.MaxAge)
		case d <= 0:
			ps.add(at+".maxAge", "must be positive")
		default:
			cl.maxAge = d
		}
	}
	ps.p.control = cl
}

// ControlList returns the policy's controlList as configured (ref, keys as
// loaded, maxAge), or false when it names none.
func (p *Policy) ControlList() (control.Config, bool) {
	if p.control == nil {
		return control.Config{}, false
	}
	return control.Config{Ref: p.control.spec.Ref, Keys: p.control.keys, MaxAge: p.control.maxAge}, true
}

// AttachControl gives the policy the guard its decisions consult, made
// with o (how to reach the registry, where to remember lists), and returns
// it; a guard already attached is kept and returned. It returns nil when
// the policy names no controlList. A policy that names one but has no
// guard denies everything with a control check saying so: the CLI, the Go
// API and the index attach one before deciding.
func (p *Policy) AttachControl(o control.Options) *control.Guard {
	c := p.control
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guard == nil {
		cfg, _ := p.ControlList()
		c.guard = control.NewGuard(cfg, o)
	}
	return c.guard
}

// ControlGuard is the attached guard, or nil.
func (p *Policy) ControlGuard() *control.Guard {
	if p.control == nil {
		return nil
	}
	p.control.mu.Lock()
	defer p.control.mu.Unlock()
	return p.control.guard
}

// controlCheck matches in against the list in force. res gives the keys
// whose signatures verified (publisherKey entries).
func (p *Policy) controlCheck(ctx context.Context, in Input, res *signing.Result) (Check, *ControlVerdict) {
	c := Check{Name: CheckControl}
	g := p.ControlGuard()
	if g == nil {
		c.Reason = "the policy names a control list but it was not consulted (no guard attached: policy.AttachControl): denied"
		return c, nil
	}
	cur, err := g.Current(ctx)
	if err != nil {
		c.Reason = err.Error()
		return c, nil
	}
	v := &ControlVerdict{Sequence: cur.List.Sequence, List: cur.Digest}
	s := control.Subject{Digest: in.Digest, LayerDigest: in.LayerDigest, ContentDigest: in.ContentDigest}
	if in.Extension != nil {
		s.Name, s.Version = in.Extension.Metadata.Name, in.Extension.Metadata.Version
	}
	if res != nil {
		for _, sig := range res.Signatures {
			if sig.Verified {
				s.Signers = append(s.Signers, sig.Fingerprint)
			}
		}
	}
	hits := cur.List.Match(s)
	list := fmt.Sprintf("control list sequence %d", cur.List.Sequence)
	if len(hits) == 0 {
		c.Passed = true
		c.Reason = "not on the " + list
		if in.ContentDigest == "" {
			c.Reason += " (content not read yet: checked again as it is unpacked)"
		}
		return c, v
	}
	h := hits[0]
	e := h.Entry
	v.Action, v.Entry, v.By, v.Reason = e.Action, h.Index, h.By, e.Reason
	what := fmt.Sprintf("entry %d (%s), matched by %s, decided %s", h.Index, e.Describe(), h.By, e.Time.UTC().Format(time.RFC3339))
	switch {
	case e.Action == control.Yank && in.PinnedByDigest:
		c.Passed = true
		c.Reason = fmt.Sprintf("yanked by the %s (%s), allowed because it is pinned by digest: %s", list, e.Reason, what)
	case e.Action == control.Yank:
		c.Reason = fmt.Sprintf("yanked by the %s: %s (%s)", list, e.Reason, what)
	default:
		c.Reason = fmt.Sprintf("blocked by the %s: %s (%s)", list, e.Reason, what)
	}
	return c, v
}

// ControlHit reports whether d's control check failed because the list
// blocks (block) or yanks (yank) the version, "" otherwise: the index
// marks such versions and hides blocked ones from its catalog.
func ControlHit(d *Decision) string {
	if d.Control != nil && d.Control.Action != "" {
		for _, c := range d.Checks {
			if c.Name == CheckControl && !c.Passed {
				return d.Control.Action
			}
		}
		return ""
	}
	for _, c := range d.Checks {
		if c.Name != CheckControl || c.Passed {
			continue
		}
		switch {
		case strings.HasPrefix(c.Reason, "blocked by the control list"):
			return control.Block
		case strings.HasPrefix(c.Reason, "yanked by the control list"):
			return control.Yank
		}
	}
	return ""
}

// RecheckContent evaluates d's control check again once the content
// digest is known (it is computed as the layer unpacks, after resolution
// decided without reading any layer) and updates d: the same files are
// refused under any name. in is the input d was decided on, with
// ContentDigest and LayerDigest set. Without a controlList it does nothing.
//
// A nil d (a version chosen without a decision) gets a decision of its own
// holding only the control check. It returns d.
func (p *Policy) RecheckContent(ctx context.Context, d *Decision, in Input) *Decision {
	if p.control == nil {
		return d
	}
	if d == nil {
		d = &Decision{Repository: in.Repository, Digest: in.Digest, Mode: "enforce"}
		if p.Audit {
			d.Mode = "audit"
		}
	}
	c, v := p.controlCheck(ctx, in, d.Evidence)
	d.Control = v
	replaced := false
	for i := range d.Checks {
		if d.Checks[i].Name == CheckControl {
			d.Checks[i] = c
			replaced = true
		}
	}
	if !replaced {
		d.Checks = append(d.Checks, c)
	}
	return d.finish(d.Mode == "audit")
}
