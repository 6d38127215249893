package artifact

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// CopyOptions tunes Copy. The zero value copies everything that refers to
// the artifact too.
type CopyOptions struct {
	// SkipRelated copies the artifact alone, without its signatures,
	// attestations and referrers.
	SkipRelated bool
	// Concurrency bounds parallel blob transfers; 0 means oras-go's default.
	Concurrency int
	// Progress, when set, receives an event for each copied blob.
	Progress ProgressFunc
}

// CopyResult says what Copy moved.
type CopyResult struct {
	Manifest ocispec.Descriptor
	// Related lists the signatures, attestations and referrers copied along.
	Related []Related
}

// Copy copies the artifact srcRef names from src to dst under dstRef (a tag,
// or "" to keep it untagged), with its OCI referrers (recursively) and its
// cosign signature, attestation and SBOM tags, so that a mirror or an
// air-gapped copy verifies exactly as the original does. src and dst are
// any oras targets: registries or OCI image layouts.
func Copy(ctx context.Context, src oras.ReadOnlyGraphTarget, srcRef string, dst oras.Target, dstRef string, opts CopyOptions) (*CopyResult, error) {
	graph := oras.DefaultCopyGraphOptions
	if opts.Concurrency > 0 {
		graph.Concurrency = opts.Concurrency
	}
	if opts.Progress != nil {
		graph.PostCopy = func(_ context.Context, d ocispec.Descriptor) error {
			opts.Progress.emit(d, "done", d.Size)
			return nil
		}
		graph.OnCopySkipped = func(_ context.Context, d ocispec.Descriptor) error {
			opts.Progress.emit(d, "exists", d.Size)
			return nil
		}
	}
	var (
		root ocispec.Descriptor
		err  error
	)
	if opts.SkipRelated {
		root, err = oras.Copy(ctx, src, srcRef, dst, dstRef, oras.CopyOptions{CopyGraphOptions: graph})
	} else {
		root, err = oras.ExtendedCopy(ctx, src, srcRef, dst, dstRef, oras.ExtendedCopyOptions{ExtendedCopyGraphOptions: oras.ExtendedCopyGraphOptions{CopyGraphOptions: graph}})
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", srcRef, err)
	}
	res := &CopyResult{Manifest: root}
	if opts.SkipRelated {
		return res, nil
	}
	related, err := FindRelated(ctx, src, root)
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", srcRef, err)
	}
	for _, r := range related {
		if r.Tag != "" {
			// Cosign tags are found by name, not by graph: copy them as tags.
			if _, err := oras.Copy(ctx, src, r.Tag, dst, r.Tag, oras.CopyOptions{CopyGraphOptions: graph}); err != nil {
				return nil, fmt.Errorf("copy %s: %w", r.Tag, err)
			}
		}
		res.Related = append(res.Related, r)
	}
	return res, nil
}
