package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Media types of the snapshot artifact: one layer per file, each titled
// with its file name (org.opencontainers.image.title).
const (
	SnapshotArtifactType = "application/vnd.connectsoft.snapshot.v1"
	MetadataMediaType    = "application/vnd.connectsoft.snapshot.metadata.v1+json"
	CatalogMediaType     = "application/vnd.connectsoft.snapshot.catalog.v1+json"
)

// Manifest annotations, for people and tools that list snapshots; the
// client trusts only the TUF metadata.
const (
	AnnotationVersion = "io.connectsoft.snapshot.version"
	AnnotationScope   = "io.connectsoft.snapshot.scope"
)

// maxManifest bounds the snapshot manifest read; maxCatalog a catalog
// whose targets entry says nothing smaller.
const (
	maxManifest = 1 << 20
	maxFiles    = 1024
)

// ErrNotSnapshot matches a reference that does not name a snapshot
// artifact.
var ErrNotSnapshot = errors.New("not a snapshot artifact")

// Push stores files as one snapshot artifact in dst and tags it; it
// returns the manifest's descriptor.
func Push(ctx context.Context, dst oras.Target, tag string, files Files, scope string, version int64, created time.Time) (ocispec.Descriptor, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	layers := make([]ocispec.Descriptor, 0, len(names))
	for _, n := range names {
		mt := MetadataMediaType
		if n == CatalogTarget {
			mt = CatalogMediaType
		}
		b := files[n]
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b)),
			Annotations: map[string]string{ocispec.AnnotationTitle: n}}
		if err := pushOnce(ctx, dst, d, b); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push %s: %w", n, err)
		}
		layers = append(layers, d)
	}
	desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, SnapshotArtifactType, oras.PackManifestOptions{
		Layers: layers,
		ManifestAnnotations: map[string]string{
			AnnotationVersion:         strconv.FormatInt(version, 10),
			AnnotationScope:           scope,
			ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push snapshot manifest: %w", err)
	}
	if tag != "" {
		if err := dst.Tag(ctx, desc, tag); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("tag snapshot %s: %w", tag, err)
		}
	}
	return desc, nil
}

func pushOnce(ctx context.Context, dst oras.Target, d ocispec.Descriptor, b []byte) error {
	ok, err := dst.Exists(ctx, d)
	if err != nil || ok {
		return err
	}
	return dst.Push(ctx, d, strings.NewReader(string(b)))
}

// artifactFiles reads a snapshot manifest and lists its files by title.
func artifactFiles(ctx context.Context, src oras.ReadOnlyTarget, ref string) (ocispec.Descriptor, map[string]ocispec.Descriptor, error) {
	desc, err := src.Resolve(ctx, ref)
	if err != nil {
		return desc, nil, fmt.Errorf("snapshot %s: %w", ref, err)
	}
	if desc.Size > maxManifest {
		return desc, nil, fmt.Errorf("%w: %s: manifest of %d bytes", ErrNotSnapshot, ref, desc.Size)
	}
	b, err := content.FetchAll(ctx, src, desc)
	if err != nil {
		return desc, nil, fmt.Errorf("snapshot %s: %w", ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return desc, nil, fmt.Errorf("%w: %s: %v", ErrNotSnapshot, ref, err)
	}
	if m.ArtifactType != SnapshotArtifactType {
		return desc, nil, fmt.Errorf("%w: %s has artifactType %q, want %s (written by mkt index snapshot)", ErrNotSnapshot, ref, m.ArtifactType, SnapshotArtifactType)
	}
	if len(m.Layers) > maxFiles {
		return desc, nil, fmt.Errorf("%w: %s has %d layers", ErrNotSnapshot, ref, len(m.Layers))
	}
	files := map[string]ocispec.Descriptor{}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if name == "" || strings.ContainsAny(name, "/\\") {
			return desc, nil, fmt.Errorf("%w: %s: a layer titled %q", ErrNotSnapshot, ref, name)
		}
		if _, dup := files[name]; dup {
			return desc, nil, fmt.Errorf("%w: %s: two layers titled %q", ErrNotSnapshot, ref, name)
		}
		files[name] = l
	}
	return desc, files, nil
}

// layerFetcher hands go-tuf's updater the artifact's layers as if they
// were files under a URL: a missing one is a 404 (the end of the root
// chain), one larger than the updater allows is refused before reading.
type layerFetcher struct {
	ctx   context.Context
	src   content.Fetcher
	files map[string]ocispec.Descriptor
}

const fetchBase = "oci://snapshot/"

func (f *layerFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(url, fetchBase), "targets/")
	d, ok := f.files[name]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
	}
	if d.Size > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than the %d allowed", name, d.Size, maxLength)}
	}
	rc, err := f.src.Fetch(f.ctx, d)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	// content.ReadAll checks the size and the layer digest.
	return content.ReadAll(io.LimitReader(rc, maxLength+1), d)
}
