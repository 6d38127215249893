package marketplace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
)

// Stages are the phases an extension is promoted through (DESIGN §6.2):
// the internal catalog, a private enterprise marketplace, the public one.
var Stages = []string{"internal", "enterprise", "public"}

// ErrNotPromoted is returned by Promote when the stage's policy did not
// pass: nothing was copied, and the Promotion's Decision says why.
var ErrNotPromoted = errors.New("not promoted: the stage's policy did not pass")

// PromoteOptions say where a version goes and what it must pass there.
type PromoteOptions struct {
	// Stage is the stage promoted to (one of Stages), for the record.
	Stage string
	// Registry is the stage's HOST[/PREFIX]: acme/crm lands at
	// HOST/PREFIX/acme/crm:<version>, where that stage's Factory finds it.
	Registry string
	// Policy is the stage's policy. It must pass outright: an audit-mode
	// policy that would deny promotes nothing.
	Policy *policy.Policy
	// FactoryVersion is given to the policy's compatibility check, if any.
	FactoryVersion string
	// Remote reaches the source.
	Remote remote.Options
	// Destination reaches the stage's registry; nil: as Remote.
	Destination *remote.Options
}

// Promotion says what Promote decided and, when it passed, copied.
type Promotion struct {
	Stage string `json:"stage"`
	// Source is repository@digest of the version promoted.
	Source string `json:"source"`
	// Destination is where it was (or would have been) copied to.
	Destination string `json:"destination"`
	Digest      string `json:"digest"`
	Promoted    bool   `json:"promoted"`
	// Related are the signatures, attestations and referrers copied along.
	Related  []artifact.Related `json:"related,omitempty"`
	Decision *policy.Decision   `json:"decision"`
}

// Promote copies the version ref names, with every signature and
// attestation, into the stage's registry, only when the stage's policy
// passes for it there. The policy is evaluated as the destination will be
// verified: against the destination repository (the stage policy's rules
// match the stage's registry) with the evidence found at the source,
// which the copy carries over unchanged, so a Factory verifying the
// promoted version with the same policy gets the same decision. A yanked
// version is never promoted, even by digest.
func Promote(ctx context.Context, ref string, o PromoteOptions) (*Promotion, error) {
	if !slices.Contains(Stages, o.Stage) {
		return nil, fmt.Errorf("promote to %q: want one of %s", o.Stage, strings.Join(Stages, ", "))
	}
	if o.Policy == nil {
		return nil, errors.New("promote: a stage policy is required")
	}
	if o.Registry == "" {
		return nil, errors.New("promote: the stage's registry (HOST[/PREFIX]) is required")
	}
	ro, err := o.Remote.Shared()
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	c, err := resolve.FetchCandidate(ctx, ref, ro, sc)
	if err != nil {
		return nil, err
	}
	dest := strings.TrimSuffix(o.Registry, "/") + "/" + c.Name
	p := &Promotion{Stage: o.Stage, Source: c.Reference, Destination: dest + ":" + c.Version, Digest: c.Digest}
	// A stage policy's control list is consulted as verify consults it.
	attachControl(o.Policy, ro)
	in := policy.Input{Repository: dest, Digest: c.Digest, Extension: c.Extension,
		Evidence: c.Evidence, FactoryVersion: o.FactoryVersion, LayerDigest: c.LayerDigest()}
	if p.Decision, err = o.Policy.Evaluate(ctx, in); err != nil {
		return nil, err
	}
	if !p.Decision.Passed {
		return p, fmt.Errorf("%s to %s: %w", ref, o.Stage, ErrNotPromoted)
	}
	// What is copied must be what was decided: the layer's descriptor
	// agrees with the config the policy read.
	if err := artifact.CheckContentAt(ctx, c.Reference, ro, c.Artifact); err != nil {
		return nil, err
	}
	src, err := artifact.NewRepository(c.Reference, ro)
	if err != nil {
		return nil, err
	}
	if _, ok := o.Policy.ControlList(); ok {
		// Blocked files are refused under any name: ask again with the
		// content digest, read as the layer streams.
		cd, err := artifact.ContentDigestOf(ctx, src, c.Artifact, artifact.Limits{})
		if err != nil {
			return nil, err
		}
		in.ContentDigest = cd
		if p.Decision = o.Policy.RecheckContent(ctx, p.Decision, in); !p.Decision.Passed {
			return p, fmt.Errorf("%s to %s: %w", ref, o.Stage, ErrNotPromoted)
		}
	}
	do := o.Remote
	if o.Destination != nil {
		do = *o.Destination
	}
	dst, err := artifact.NewRepository(dest, do)
	if err != nil {
		return nil, err
	}
	res, err := artifact.Copy(ctx, src, c.Digest, dst, c.Version, artifact.CopyOptions{})
	if err != nil {
		return nil, fmt.Errorf("promote %s to %s: %w", c.Reference, dest, err)
	}
	p.Promoted, p.Related = true, res.Related
	return p, nil
}
