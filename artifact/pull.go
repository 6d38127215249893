package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/connectsoft/marketplace/remote"
	"io"
	"os"
	"path/filepath"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// maxManifestSize bounds a manifest fetch; ours are a few kilobytes.
const maxManifestSize = 4 << 20

// Artifact is a resolved and checked extension manifest: what a reference
// names, before any layer is fetched.
type Artifact struct {
	// Reference is what was asked for.
	Reference string
	// Descriptor describes the manifest.
	Descriptor ocispec.Descriptor
	// Manifest is the parsed manifest.
	Manifest ocispec.Manifest
	// Extension is the descriptor from the config blob.
	Extension *Extension
}

// Layer is the artifact's single content layer.
func (a *Artifact) Layer() ocispec.Descriptor { return a.Manifest.Layers[0] }

// Fetch resolves ref on src and checks that it is a Marketplace extension:
// an OCI image manifest with our artifact type, config and one content layer,
// and a config that passes the model's validation. The manifest and config
// are verified against their digests; the layer is not fetched.
func Fetch(ctx context.Context, src oras.ReadOnlyTarget, ref string) (*Artifact, error) {
	a, kind, err := fetchManifest(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	if err := fetchConfig(ctx, src, a, kind); err != nil {
		return nil, err
	}
	return a, nil
}

// fetchManifest reads and checks the manifest ref names, and returns the
// kind its artifact type says.
func fetchManifest(ctx context.Context, src oras.ReadOnlyTarget, ref string) (*Artifact, Kind, error) {
	desc, raw, err := oras.FetchBytes(ctx, src, ref, oras.FetchBytesOptions{MaxBytes: maxManifestSize})
	if err != nil {
		return nil, "", fmt.Errorf("fetch manifest %s: %w", ref, wrapFetchError(err))
	}
	a := &Artifact{Reference: ref, Descriptor: desc}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, "", fmt.Errorf("%s: %w: media type %q, want an OCI image manifest (%s)", ref, ErrNotExtension, desc.MediaType, ocispec.MediaTypeImageManifest)
	}
	if err := json.Unmarshal(raw, &a.Manifest); err != nil {
		return nil, "", fmt.Errorf("%s: %w: manifest is not valid JSON: %v", ref, ErrNotExtension, err)
	}
	m := a.Manifest
	kind, ok := KindOfArtifactType(m.ArtifactType)
	switch {
	case !ok:
		return nil, "", fmt.Errorf("%s: %w: artifactType %q is not application/vnd.connectsoft.<template|agent|module|connector>.v1 (was it pushed by another tool?)", ref, ErrNotExtension, m.ArtifactType)
	case m.Config.MediaType != ConfigMediaType:
		return nil, "", fmt.Errorf("%s: %w: config media type %q, want %s", ref, ErrNotExtension, m.Config.MediaType, ConfigMediaType)
	case len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType:
		return nil, "", fmt.Errorf("%s: %w: want exactly one layer of %s, got %d layers", ref, ErrNotExtension, LayerMediaType, len(m.Layers))
	case m.Config.Size > maxDescriptorSize:
		return nil, "", fmt.Errorf("%s: %w: config declares %d bytes, over %d", ref, ErrInvalidExtension, m.Config.Size, maxDescriptorSize)
	}
	a.Descriptor.ArtifactType = m.ArtifactType
	return a, kind, nil
}

// fetchConfig reads a's config blob into a.Extension and checks that it
// describes the kind its artifact type says.
// A connection dropped under the small config is fetched again, as a
// layer's is resumed.
func fetchConfig(ctx context.Context, src content.Fetcher, a *Artifact, kind Kind) error {
	var cfg []byte
	err := blobRetry.do(ctx, "fetch config", func() (err error) {
		cfg, err = content.FetchAll(ctx, src, a.Manifest.Config)
		return err
	})
	if err != nil {
		return fmt.Errorf("fetch config of %s: %w", a.Reference, wrapFetchError(err))
	}
	return setConfig(a, cfg, kind)
}

// setConfig parses cfg, a's config blob, into a.Extension.
func setConfig(a *Artifact, cfg []byte, kind Kind) error {
	ext, err := ParseConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Reference, err)
	}
	if ext.Kind != kind {
		return fmt.Errorf("%s: %w: artifactType says %s but the descriptor says %s", a.Reference, ErrInvalidExtension, kind, ext.Kind)
	}
	a.Extension = ext
	return nil
}

// PullOptions tunes Pull. The zero value applies DefaultLimits and refuses
// a target directory that already holds files.
type PullOptions struct {
	Limits Limits
	// Force replaces a non-empty target directory.
	Force bool
	// Progress, when set, receives transfer events.
	Progress ProgressFunc
}

// PullResult says what Pull fetched and wrote.
type PullResult struct {
	Artifact *Artifact
	Stats    UnpackStats
}

// Pull fetches the extension that ref names and unpacks it into dir. The
// layer streams through its digest check into a staging directory beside
// dir; only when every byte is verified and every entry accepted does the
// staging directory become dir. A failed pull leaves nothing behind.
func Pull(ctx context.Context, src oras.ReadOnlyTarget, ref, dir string, opts PullOptions) (*PullResult, error) {
	a, err := Fetch(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	st, err := Extract(ctx, src, a, dir, opts)
	if err != nil {
		return nil, err
	}
	return &PullResult{Artifact: a, Stats: st}, nil
}

// Extract unpacks an already fetched artifact into dir, all or nothing. The
// extension.yaml unpacked from the layer must say exactly what the config
// says (see CheckContent); otherwise nothing is written.
func Extract(ctx context.Context, src content.Fetcher, a *Artifact, dir string, opts PullOptions) (UnpackStats, error) {
	var st UnpackStats
	dir, err := filepath.Abs(dir)
	if err != nil {
		return st, err
	}
	if err := checkTarget(dir, opts.Force); err != nil {
		return st, err
	}
	created, err := MkdirAllTracked(filepath.Dir(dir))
	if err != nil {
		return st, fmt.Errorf("pull into %s: %w", dir, err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".mkt-pull-*")
	if err != nil {
		RemoveCreated(created)
		return st, fmt.Errorf("pull into %s: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
			RemoveCreated(created)
		}
	}()

	layer := a.Layer()
	rr := &resumingReader{ctx: ctx, src: src, desc: layer, progress: opts.Progress}
	defer rr.Close()
	vr := content.NewVerifyReader(withProgress(rr, layer, "downloading", opts.Progress, 0), layer)
	// Fetch and hash on one core while the other inflates and writes.
	ra := newReadAhead(vr, 4, 1<<20)
	defer ra.Close()
	if st, err = Unpack(ctx, ra, staging, opts.Limits); err != nil {
		return st, fmt.Errorf("pull %s: %w", a.Reference, err)
	}
	if _, err := io.Copy(io.Discard, ra); err != nil {
		return st, fmt.Errorf("pull %s: %w", a.Reference, wrapFetchError(err))
	}
	ra.Close()
	if err := vr.Verify(); err != nil {
		return st, fmt.Errorf("pull %s: layer %s: %w", a.Reference, layer.Digest, wrapFetchError(err))
	}
	if err := checkUnpackedDescriptor(staging, a); err != nil {
		return st, fmt.Errorf("pull %s: %w", a.Reference, err)
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return st, err
	}
	if err := replaceDir(staging, dir); err != nil {
		return st, fmt.Errorf("pull into %s: %w", dir, err)
	}
	ok = true
	opts.Progress.emit(layer, "done", layer.Size)
	return st, nil
}

func checkTarget(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("pull into %s: %w", dir, err)
	case len(entries) > 0 && !force:
		return fmt.Errorf("pull into %s: %w (use --force to replace it)", dir, ErrTargetNotEmpty)
	}
	return nil
}

// replaceDir moves staging to dir; an existing dir is swapped out first and
// removed only once the new one is in place.
func replaceDir(staging, dir string) error {
	err := os.Rename(staging, dir)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(dir); serr != nil {
		return err
	}
	old := staging + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(staging, dir); err != nil {
		_ = os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}

// MkdirAllTracked creates dir and its missing parents and returns the
// topmost directory it created ("" if none), so that an operation that
// fails can remove exactly what it made (RemoveCreated) and nothing else.
func MkdirAllTracked(dir string) (string, error) {
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if top == "" {
		return "", nil
	}
	return top, os.MkdirAll(dir, 0o755)
}

// RemoveCreated removes what MkdirAllTracked created.
func RemoveCreated(top string) {
	if top != "" {
		os.RemoveAll(top)
	}
}

func wrapFetchError(err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("%w: %v", ErrDigestMismatch, err)
	}
	return err
}

func isAlreadyExists(err error) bool { return errors.Is(err, errdef.ErrAlreadyExists) }

// resumingReader streams a blob and survives a connection dropped mid-way:
// it fetches again and continues at the offset it had reached, with a Range
// request where the registry offers one, otherwise by skipping the bytes it
// has already passed on. The digest check downstream still covers the whole
// stream, so a registry that changed content between attempts is caught.
type resumingReader struct {
	ctx      context.Context
	src      content.Fetcher
	desc     ocispec.Descriptor
	progress ProgressFunc
	rc       io.ReadCloser
	off      int64
	failures int
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		if r.rc == nil {
			if err := r.open(); err != nil {
				if r.retry(err) {
					continue
				}
				return 0, fmt.Errorf("fetch %s: %w", r.desc.Digest, err)
			}
		}
		n, err := r.rc.Read(p)
		r.off += int64(n)
		if err == io.EOF && r.off < r.desc.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			if r.retry(err) {
				if n > 0 {
					return n, nil
				}
				continue
			}
			if remote.IsTransient(err) {
				err = fmt.Errorf("fetch %s: gave up after %d attempts: %w", r.desc.Digest, r.failures+1, err)
			}
		}
		return n, err
	}
}

func (r *resumingReader) open() error {
	rc, err := r.src.Fetch(r.ctx, r.desc)
	if err != nil {
		return err
	}
	if r.off > 0 {
		if s, ok := rc.(io.Seeker); ok {
			_, err = s.Seek(r.off, io.SeekStart)
		} else {
			_, err = io.CopyN(io.Discard, rc, r.off)
		}
		if err != nil {
			rc.Close()
			return err
		}
	}
	r.rc = rc
	return nil
}

// retry decides whether err is worth another fetch, and waits before it.
func (r *resumingReader) retry(err error) bool {
	if !remote.IsTransient(err) || r.failures+1 >= blobRetry.attempts {
		return false
	}
	r.failures++
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	r.progress.emit(r.desc, "retrying", r.off)
	select {
	case <-r.ctx.Done():
		return false
	case <-time.After(blobRetry.wait << (r.failures - 1)):
		return true
	}
}

func (r *resumingReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}
