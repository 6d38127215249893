package marketplace

import (
	"context"
	"fmt"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
)

// Inspection is everything known about one artifact without its layer: the
// manifest, the descriptor, what refers to it, and its signatures and
// attestations, each checked against the keys Inspect was given.
type Inspection struct {
	*artifact.Inspection
	// Signatures lists every signature found; Verified when a given key
	// made it.
	Signatures []signing.SignatureResult
	// Attestations lists every attestation found, with its statement.
	Attestations []signing.AttestationResult
}

// Inspect fetches what ref names and collects its evidence (cosign tags and
// OCI referrers). With keys, each signature and attestation says whether
// one of them made it; without, the signers stay unknown. Inspect decides
// nothing: Verify does.
func Inspect(ctx context.Context, ref string, keys []*signing.Key, ro remote.Options) (*Inspection, error) {
	// One registry client, one connection pool, for the artifact and its
	// evidence.
	ro, err := ro.Shared()
	if err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(ref, ro)
	if err != nil {
		return nil, err
	}
	in, err := artifact.Inspect(ctx, repo, repo.Reference.Reference)
	if err != nil {
		return nil, err
	}
	c, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	at := repo.Reference.Registry + "/" + repo.Reference.Repository + "@" + in.Descriptor.Digest.String()
	ev, err := c.Collect(ctx, at)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: collect signatures: %w", ref, err)
	}
	checked, err := ev.Check(ctx, signing.VerifyOptions{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: check signatures: %w", ref, err)
	}
	return &Inspection{Inspection: in, Signatures: checked.Signatures, Attestations: checked.Attestations}, nil
}
