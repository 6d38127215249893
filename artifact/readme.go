package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"oras.land/oras-go/v2/content"
)

// ReadmeFile is the file at an extension's root that catalogs show as its
// documentation.
const ReadmeFile = "README.md"

// Readme is an extension's README as read from its layer: the first bytes
// of it, and whether there was more.
type Readme struct {
	Text []byte
	// Size is the file's size in the layer, also when Text holds less.
	Size int64
	// Truncated is true when Text is only the first part of the file.
	Truncated bool
}

// ReadmeOptions bound what ReadLayerReadme reads. Zero values take the
// defaults below.
type ReadmeOptions struct {
	// MaxText is the most of the README kept (DefaultReadmeMaxText).
	MaxText int64
	// MaxRead is the most compressed bytes of the layer read while looking
	// for it (DefaultReadmeMaxRead): a layer whose README lies further in
	// reads as one without.
	MaxRead int64
	// Limits are the unpacker's limits, applied to the entries passed on
	// the way.
	Limits Limits
}

// Defaults of ReadmeOptions.
const (
	DefaultReadmeMaxText = 256 << 10
	DefaultReadmeMaxRead = 8 << 20
)

// errReadBudget ends a search that read its MaxRead.
var errReadBudget = errors.New("read budget spent")

type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errReadBudget
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// ReadLayerReadme reads README.md at the root of the tar+gzip layer r,
// entry by entry under the unpacker's rules, and stops as soon as it has
// it: at most o.MaxText bytes of it are read. The packer writes entries
// sorted by name, and "README.md" sorts before every lower-case name
// (extension.yaml, most directories), so for a packed layer the search
// ends after a few entries; it also ends at the first entry that sorts
// after it, and after o.MaxRead compressed bytes. No README within those
// bounds is (nil, nil): not an error, the extension has none to show.
func ReadLayerReadme(ctx context.Context, r io.Reader, o ReadmeOptions) (*Readme, error) {
	if o.MaxText <= 0 {
		o.MaxText = DefaultReadmeMaxText
	}
	if o.MaxRead <= 0 {
		o.MaxRead = DefaultReadmeMaxRead
	}
	lr, err := newLayerReader(&budgetReader{r: r, left: o.MaxRead}, o.Limits)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ReadmeFile, err)
	}
	defer lr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, hdr, err := lr.next()
		switch {
		case err == io.EOF, errors.Is(err, errReadBudget):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", ReadmeFile, err)
		case name > ReadmeFile:
			return nil, nil // sorted: it cannot come later
		case name != ReadmeFile || hdr.Typeflag != tar.TypeReg:
			continue
		}
		text, err := io.ReadAll(io.LimitReader(lr.tr, o.MaxText))
		if errors.Is(err, errReadBudget) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ReadmeFile, wrapTarError(err))
		}
		return &Readme{Text: text, Size: hdr.Size, Truncated: hdr.Size > int64(len(text))}, nil
	}
}

// FetchReadme fetches a's layer from src and reads its README as
// ReadLayerReadme does. A README found is returned only once the whole
// layer has been read and has a's layer digest (an error wrapping
// ErrDigestMismatch otherwise): FetchChecked reads a layer over 4 MiB
// only as far as its extension.yaml, so without this a registry could
// show a README that is not the one signed. The layer is read to its end
// only when there is a README to show.
func FetchReadme(ctx context.Context, src content.Fetcher, a *Artifact, o ReadmeOptions) (*Readme, error) {
	layer := a.Layer()
	rc, err := src.Fetch(ctx, layer)
	if err != nil {
		return nil, fmt.Errorf("fetch layer %s of %s: %w", layer.Digest, a.Reference, wrapFetchError(err))
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, layer)
	r, err := ReadLayerReadme(ctx, vr, o)
	if err != nil || r == nil {
		return nil, err
	}
	if err := readToVerify(vr, a); err != nil {
		return nil, err
	}
	return r, nil
}
