package artifact

import (
	"context"
	"fmt"

	"oras.land/oras-go/v2"
)

// Inspection is what `mkt inspect` shows: the checked artifact and what
// refers to it (signatures, attestations, SBOMs, referrers).
type Inspection struct {
	*Artifact
	Related []Related
}

// Inspect fetches the manifest and config that ref names, without the layer,
// and lists what refers to the artifact.
func Inspect(ctx context.Context, src oras.ReadOnlyTarget, ref string) (*Inspection, error) {
	a, err := Fetch(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	rel, err := FindRelated(ctx, src, a.Descriptor)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	return &Inspection{Artifact: a, Related: rel}, nil
}
