package artifact

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gzipLevel is fixed: the layer digest depends on it, so it is part of the
// reproducibility contract and changes only with a new layer media type.
// klauspost's level 5 compresses within a few percent of stdlib's default at
// several times its speed, and stores incompressible data cheaply.
const gzipLevel = 5

// epoch is the modification time of every tar entry.
var epoch = time.Unix(0, 0).UTC()

// PackOptions tunes Pack. The zero value is the sensible default.
type PackOptions struct {
	// TempDir is where the layer is staged before push; "" means os.TempDir().
	TempDir string
	// Created, when non-zero, is written as org.opencontainers.image.created.
	// The CLI sets it from SOURCE_DATE_EPOCH only, so that the manifest
	// digest stays reproducible by default.
	Created time.Time
}

// Package is a packed extension ready to push: the manifest and config are
// small and held in memory, the layer is a temporary file. Close removes it.
type Package struct {
	Extension *Extension
	Manifest  ocispec.Descriptor
	Config    ocispec.Descriptor
	Layer     ocispec.Descriptor
	// Files counts the regular files in the layer.
	Files int

	manifestJSON []byte
	configJSON   []byte
	layerPath    string
}

// ManifestJSON is the exact manifest that Manifest describes.
func (p *Package) ManifestJSON() []byte { return p.manifestJSON }

// OpenLayer opens the staged layer for reading.
func (p *Package) OpenLayer() (*os.File, error) { return os.Open(p.layerPath) }

// Close removes the staged layer.
func (p *Package) Close() error {
	if p.layerPath == "" {
		return nil
	}
	err := os.Remove(p.layerPath)
	p.layerPath = ""
	return err
}

// Pack loads DIR/extension.yaml, writes the reproducible layer to a temporary
// file and builds the config and manifest. The same tree gives the same
// digests whatever its modification times, owners or directory order.
func Pack(ctx context.Context, dir string, opts PackOptions) (*Package, error) {
	ext, err := LoadExtension(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(opts.TempDir, "mkt-layer-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	pkg := &Package{Extension: ext, layerPath: f.Name()}
	fail := func(err error) (*Package, error) {
		f.Close()
		pkg.Close()
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	files, err := WriteLayer(ctx, cw, dir, ext)
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	pkg.Files = files
	pkg.Layer = ocispec.Descriptor{
		MediaType: LayerMediaType,
		Digest:    digest.NewDigest(digest.SHA256, h),
		Size:      cw.n,
		Annotations: map[string]string{
			// The title lets stock `oras pull` save the layer as a file.
			ocispec.AnnotationTitle: layerFileName(ext),
		},
	}
	if pkg.configJSON, err = ext.CanonicalJSON(); err != nil {
		return fail(err)
	}
	pkg.Config = ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(pkg.configJSON), Size: int64(len(pkg.configJSON))}
	manifest := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ext.Kind.ArtifactType(),
		Config:       pkg.Config,
		Layers:       []ocispec.Descriptor{pkg.Layer},
		Annotations:  Annotations(ext, opts.Created),
	}
	if pkg.manifestJSON, err = json.Marshal(manifest); err != nil {
		return fail(err)
	}
	pkg.Manifest = ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: manifest.ArtifactType,
		Digest:       digest.FromBytes(pkg.manifestJSON),
		Size:         int64(len(pkg.manifestJSON)),
	}
	return pkg, nil
}

func layerFileName(ext *Extension) string {
	return ext.Publisher() + "-" + ext.ShortName() + "-" + ext.Metadata.Version + ".tar.gz"
}

// Annotations are the manifest annotations of DESIGN §3 for ext; created is
// written only when non-zero.
func Annotations(ext *Extension, created time.Time) map[string]string {
	a := map[string]string{
		ocispec.AnnotationTitle:    firstNonEmpty(ext.Metadata.Title, ext.Metadata.Name),
		ocispec.AnnotationVersion:  ext.Metadata.Version,
		ocispec.AnnotationLicenses: ext.Spec.License,
		ocispec.AnnotationVendor:   ext.Publisher(),
		AnnotationName:             ext.Metadata.Name,
		AnnotationKind:             string(ext.Kind),
		AnnotationCompatibility:    ext.Spec.Compatibility.Factory,
	}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(ocispec.AnnotationDescription, ext.Metadata.Description)
	set(ocispec.AnnotationSource, ext.Metadata.Source)
	set(ocispec.AnnotationURL, ext.Metadata.Homepage)
	if !created.IsZero() {
		a[ocispec.AnnotationCreated] = created.UTC().Format(time.RFC3339)
	}
	return a
}

// SourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org): the zero
// time when it is unset, an error when it is not a Unix time.
func SourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

type entry struct {
	rel  string // slash-separated, no trailing slash
	dir  bool
	exec bool
	size int64
}

// WriteLayer writes dir as the reproducible tar+gzip of DESIGN §3 and returns
// how many regular files it holds. Entries are sorted by path, owned by 0:0,
// dated at the Unix epoch, with modes 0755 (directories and executables) or
// 0644. Symbolic links and special files are refused rather than silently
// dropped; .git is never packed.
func WriteLayer(ctx context.Context, w io.Writer, dir string, ext *Extension) (int, error) {
	entries, err := collect(dir, ext)
	if err != nil {
		return 0, err
	}
	gz, err := gzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(gz)
	buf := make([]byte, 256<<10)
	files := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hdr := &tar.Header{Name: e.rel, ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg, Size: e.size, Format: tar.FormatPAX}
		if e.dir {
			hdr.Name += "/"
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		} else if e.exec {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, fmt.Errorf("%s: %w", e.rel, err)
		}
		if e.dir {
			continue
		}
		files++
		if err := copyFile(tw, filepath.Join(dir, filepath.FromSlash(e.rel)), e.size, buf); err != nil {
			return 0, fmt.Errorf("%s: %w", e.rel, err)
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return files, gz.Close()
}

func copyFile(w io.Writer, name string, size int64, buf []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, size), buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("changed while packing: %d bytes read, %d expected", n, size)
	}
	return nil
}

// collect lists what the layer holds, applying include/exclude to paths
// relative to dir. An excluded directory is not descended into; a directory
// is packed when it matches include or holds something packed.
func collect(dir string, ext *Extension) ([]entry, error) {
	include := ext.Spec.Include
	if len(include) == 0 {
		include = []string{"**"}
	}
	matches := func(globs []string, rel string) bool {
		for _, g := range globs {
			if ok, _ := doublestar.Match(g, rel); ok {
				return true
			}
		}
		return false
	}
	byPath := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		excluded := matches(ext.Spec.Exclude, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if excluded {
				return filepath.SkipDir
			}
			if matches(include, rel) {
				byPath[rel] = entry{rel: rel, dir: true}
			}
		case excluded || !matches(include, rel):
			return nil
		case mode.IsRegular():
			byPath[rel] = entry{rel: rel, exec: mode&0o111 != 0, size: info.Size()}
			for parent := pathDir(rel); parent != ""; parent = pathDir(parent) {
				byPath[parent] = entry{rel: parent, dir: true}
			}
		case mode&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: symbolic links are not packed (only regular files and directories); exclude it or copy its target", rel)
		default:
			return fmt.Errorf("%s: %s is not packed (only regular files and directories)", rel, mode.Type())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e := ext.Spec.Entrypoint; e != "" {
		if ent, ok := byPath[e]; !ok || ent.dir {
			return nil, fmt.Errorf("spec.entrypoint %q is not a file in the packed tree", e)
		}
	}
	entries := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		entries = append(entries, e)
	}
	// Sort by the tar name (directories end in "/"), so a directory always
	// precedes its contents and the order never depends on the file system.
	key := func(e entry) string {
		if e.dir {
			return e.rel + "/"
		}
		return e.rel
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	if len(entries) == 0 {
		return nil, errors.New("nothing to pack: include/exclude leave no files")
	}
	return entries, nil
}

func pathDir(rel string) string {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ""
	}
	return rel[:i]
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
