package artifact

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/Masterminds/semver/v3"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
)

// PushOptions tunes Push. The zero value refuses to move a version tag.
type PushOptions struct {
	// Force lets a version tag move to different content.
	Force bool
	// Progress, when set, receives transfer events.
	Progress ProgressFunc
}

// PushResult says what Push did.
type PushResult struct {
	// Manifest describes the pushed manifest.
	Manifest ocispec.Descriptor
	// Unchanged is true when the tag already named this exact manifest.
	Unchanged bool
	// Replaced is the manifest the tag named before a forced push.
	Replaced *ocispec.Descriptor
}

// Push uploads pkg to target and tags it ("" tags it with its version). Versions are immutable: if tag is
// a SemVer version that already names a different manifest, Push fails with
// ErrVersionExists unless opts.Force is set; other tags (latest, stable) move
// freely. Pushing the same content again is a no-op that succeeds.
// Blobs the target already has are not uploaded again.
//
// The check and the tag are two registry calls, so two publishers racing on
// one version can both pass the check; the index reports any tag that moves.
func Push(ctx context.Context, target oras.Target, tag string, pkg *Package, opts PushOptions) (*PushResult, error) {
	res := &PushResult{Manifest: pkg.Manifest}
	if tag == "" {
		tag = pkg.Extension.Metadata.Version
	}
	prev, err := target.Resolve(ctx, tag)
	switch {
	case err == nil && prev.Digest == pkg.Manifest.Digest:
		res.Unchanged = true
		return res, nil
	case err == nil && !opts.Force && isVersionTag(tag):
		return nil, fmt.Errorf("%w: tag %s names %s, this push is %s; versions are immutable: publish a new version, or use --force to move the tag",
			ErrVersionExists, tag, prev.Digest, pkg.Manifest.Digest)
	case err == nil:
		res.Replaced = &prev
	case !IsNotFound(err):
		return nil, fmt.Errorf("check tag %s: %w", tag, err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return pushBlob(gctx, target, pkg.Config, func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(pkg.configJSON)), nil
		}, opts.Progress)
	})
	g.Go(func() error {
		return pushBlob(gctx, target, pkg.Layer, func() (io.ReadCloser, error) { return pkg.OpenLayer() }, opts.Progress)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	err = blobRetry.do(ctx, "push manifest", func() error {
		body := bytes.NewReader(pkg.manifestJSON)
		if rp, ok := target.(registry.ReferencePusher); ok {
			return rp.PushReference(ctx, pkg.Manifest, body, tag)
		}
		if err := target.Push(ctx, pkg.Manifest, body); err != nil && !isAlreadyExists(err) {
			return err
		}
		return target.Tag(ctx, pkg.Manifest, tag)
	})
	if err != nil {
		return nil, fmt.Errorf("push manifest: %w", err)
	}
	opts.Progress.emit(pkg.Manifest, "done", pkg.Manifest.Size)
	return res, nil
}

// pushBlob uploads one blob unless the target has it, opening the content
// afresh for every attempt so that a reset mid-upload is retried whole.
func pushBlob(ctx context.Context, target content.Storage, desc ocispec.Descriptor, open func() (io.ReadCloser, error), progress ProgressFunc) error {
	exists, err := target.Exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("check blob %s: %w", desc.Digest, err)
	}
	if exists {
		progress.emit(desc, "exists", desc.Size)
		return nil
	}
	attempt := 0
	err = blobRetry.do(ctx, "push blob "+desc.Digest.String(), func() error {
		if attempt++; attempt > 1 {
			progress.emit(desc, "retrying", 0)
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		err = target.Push(ctx, desc, withProgress(rc, desc, "uploading", progress, 0))
		if isAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	progress.emit(desc, "done", desc.Size)
	return nil
}

// isVersionTag reports whether tag is a strict SemVer version, the tags that
// never move.
func isVersionTag(tag string) bool {
	_, err := semver.StrictNewVersion(tag)
	return err == nil
}
