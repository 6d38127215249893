package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/connectsoft/marketplace/remote"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// An artifact describes itself twice: in its config blob, which the index,
// policies and resolution read, and in the extension.yaml inside its layer,
// which Factory reads once the extension is installed. Were the two allowed
// to differ, a policy would judge one extension (licence MIT, no
// permissions) and Factory would run another (GPL-3.0-only, shell.exec).
// So the layer must hold extension.yaml at its root and it must say exactly
// what the config says; the config itself must be the canonical JSON our
// packer writes, byte for byte, so that every JSON reader sees the same
// fields (encoding/json matches keys case-insensitively and keeps the last
// of duplicate keys; other readers differ).

// ContentMismatchError says how the extension.yaml in an artifact's layer
// differs from its config blob. It matches ErrInvalidExtension with
// errors.Is.
type ContentMismatchError struct {
	// Layer is the layer's digest.
	Layer string
	// Missing is set when the layer has no extension.yaml at its root.
	Missing bool
	// Differences name each field that differs, with both values.
	Differences []string
}

func (e *ContentMismatchError) Error() string {
	if e.Missing {
		return fmt.Sprintf("invalid extension: layer %s has no %s at its root; the config blob must describe the %s that ships in the layer (was it pushed by another tool?)", e.Layer, DescriptorFile, DescriptorFile)
	}
	return fmt.Sprintf("invalid extension: the %s in layer %s differs from the config blob, so what policy checks is not what would be installed: %s",
		DescriptorFile, e.Layer, strings.Join(e.Differences, "; "))
}

// Is makes errors.Is(err, ErrInvalidExtension) hold.
func (e *ContentMismatchError) Is(target error) bool { return target == ErrInvalidExtension }

// CheckContent reads the extension.yaml in a's layer from src and checks
// that it says exactly what a's config says. It streams the layer through
// the unpacker's checks and limits, stops at extension.yaml and writes
// nothing: for callers that judge an artifact without installing it (the
// index's ingest, `mkt verify`). Pull and Extract make the same check on
// the content they unpack, with no extra download.
func CheckContent(ctx context.Context, src content.Fetcher, a *Artifact, limits Limits) error {
	ext, damaged, err := readLayerDescriptor(ctx, src, a, limits)
	if err != nil {
		return err
	}
	if err := CompareDescriptors(a.Extension, ext, a.Layer().Digest.String()); err != nil {
		return fmt.Errorf("%s: %w", a.Reference, err)
	}
	return damaged
}

// FetchChecked is Fetch followed by CheckContent, in one request fewer
// for every artifact our packer wrote: it reads the layer's extension.yaml
// first, and when the canonical JSON of what it says has exactly the
// config's digest and size, that is the config (a digest names fixed
// content) and the config blob is not fetched. Otherwise it fetches the
// config and fails exactly as Fetch and CheckContent would: the config's
// own faults first, then the layer's, then how the two differ. The index
// ingests with it: a registry serves a blob at a dearer price than a
// manifest, and every version's first ingest saved one.
func FetchChecked(ctx context.Context, src oras.ReadOnlyTarget, ref string, limits Limits) (*Artifact, error) {
	a, kind, err := fetchManifest(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	ext, damaged, layerErr := readLayerDescriptor(ctx, src, a, limits)
	if layerErr == nil && damaged == nil && ext.Kind == kind {
		cfg := a.Manifest.Config
		if canon, err := ext.CanonicalJSON(); err == nil && int64(len(canon)) == cfg.Size && digest.FromBytes(canon) == cfg.Digest {
			// Parsed from the bytes, not taken from the YAML, so that the
			// artifact is the one Fetch would return, to the empty list.
			if err := setConfig(a, canon, kind); err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	if err := fetchConfig(ctx, src, a, kind); err != nil {
		return nil, err
	}
	if layerErr != nil {
		return nil, layerErr
	}
	if err := CompareDescriptors(a.Extension, ext, a.Layer().Digest.String()); err != nil {
		return nil, fmt.Errorf("%s: %w", a.Reference, err)
	}
	return a, damaged
}

// readLayerDescriptor fetches a's layer from src and reads the
// extension.yaml at its root. A small layer (most extensions) is read to
// its end: its digest is then checked too, and the connection, drained, is
// kept for the next request instead of being dropped. A layer that does
// not have its digest is returned as damaged, beside what it says, so that
// callers report how it differs from the config first, as they always did.
func readLayerDescriptor(ctx context.Context, src content.Fetcher, a *Artifact, limits Limits) (ext *Extension, damaged, err error) {
	layer := a.Layer()
	rc, err := src.Fetch(ctx, layer)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch layer %s of %s: %w", layer.Digest, a.Reference, wrapFetchError(err))
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, layer)
	if ext, err = ReadLayerDescriptor(ctx, vr, layer, limits); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.Reference, err)
	}
	if layer.Size <= smallLayer {
		damaged = readToVerify(vr, a)
	}
	return ext, damaged, nil
}

// readToVerify reads the rest of a's layer through vr and checks its size
// and digest: an error wrapping ErrDigestMismatch when the bytes are not
// the layer's.
func readToVerify(vr *content.VerifyReader, a *Artifact) error {
	_, err := io.Copy(io.Discard, vr)
	if err == nil {
		err = vr.Verify()
	}
	if err != nil {
		return fmt.Errorf("%s: layer %s: %w", a.Reference, a.Layer().Digest, wrapFetchError(err))
	}
	return nil
}

// smallLayer is the largest layer CheckContent reads to its end.
const smallLayer = 4 << 20

// CheckContentAt is CheckContent for an artifact fetched from the
// repository that ref ("host/repo[:tag|@digest]") names.
func CheckContentAt(ctx context.Context, ref string, o remote.Options, a *Artifact) error {
	repo, err := NewRepository(ref, o)
	if err != nil {
		return err
	}
	return CheckContent(ctx, repo, a, Limits{})
}

// ReadLayerDescriptor reads the extension.yaml at the root of the tar+gzip
// layer r (described by layer, for messages), entry by entry under the
// unpacker's rules and limits, and stops there. The rest of the layer is
// not read, so its digest is not checked here (CheckContent checks it for
// layers up to 4 MiB); what is installed is checked again at pull.
func ReadLayerDescriptor(ctx context.Context, r io.Reader, layer ocispec.Descriptor, limits Limits) (*Extension, error) {
	lr, err := newLayerReader(r, limits)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	defer lr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, hdr, err := lr.next()
		if err == io.EOF {
			return nil, &ContentMismatchError{Layer: layer.Digest.String(), Missing: true}
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", layer.Digest, err)
		}
		if name != DescriptorFile || hdr.Typeflag != tar.TypeReg {
			continue
		}
		ext, err := ParseExtension(lr.tr, "layer "+DescriptorFile)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", layer.Digest, wrapTarError(err))
		}
		return ext, nil
	}
}

// checkUnpackedDescriptor compares the extension.yaml that Extract just
// unpacked into dir with the config a was fetched with.
func checkUnpackedDescriptor(dir string, a *Artifact) error {
	layer := a.Layer().Digest.String()
	f, err := os.Open(filepath.Join(dir, DescriptorFile))
	if errors.Is(err, os.ErrNotExist) {
		return &ContentMismatchError{Layer: layer, Missing: true}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return &ContentMismatchError{Layer: layer, Missing: true}
	}
	ext, err := ParseExtension(f, "layer "+DescriptorFile)
	if err != nil {
		return err
	}
	return CompareDescriptors(a.Extension, ext, layer)
}

// CompareDescriptors returns a ContentMismatchError naming every field in
// which the layer's descriptor differs from the config's (nil if none).
// layer names the layer in the message.
func CompareDescriptors(config, layer *Extension, layerName string) error {
	if reflect.DeepEqual(canonicalValue(config), canonicalValue(layer)) {
		return nil
	}
	var diffs []string
	diffValues("", canonicalValue(config), canonicalValue(layer), &diffs)
	return &ContentMismatchError{Layer: layerName, Differences: diffs}
}

// canonicalValue is e as its canonical JSON decodes: maps, slices and
// scalars, with the omitted-when-empty fields absent, as the config has them.
func canonicalValue(e *Extension) any {
	b, err := e.CanonicalJSON()
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// maxDifferences bounds the fields a ContentMismatchError lists.
const maxDifferences = 8

func diffValues(at string, config, layer any, out *[]string) {
	if len(*out) >= maxDifferences || reflect.DeepEqual(config, layer) {
		return
	}
	cm, cok := config.(map[string]any)
	lm, lok := layer.(map[string]any)
	if cok && lok {
		keys := map[string]bool{}
		for k := range cm {
			keys[k] = true
		}
		for k := range lm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if at != "" {
				p = at + "." + k
			}
			diffValues(p, cm[k], lm[k], out)
		}
		return
	}
	*out = append(*out, fmt.Sprintf("%s: config says %s, layer says %s", at, showValue(config), showValue(layer)))
}

func showValue(v any) string {
	if v == nil {
		return "nothing"
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// configNotCanonical explains why config bytes are not the canonical form
// canon of what they decode to.
func configNotCanonical(data, canon []byte) error {
	if p := ambiguousKey(data); p != "" {
		return fmt.Errorf("%w: config: %s; JSON readers disagree on which one counts, so the config must hold each key once, spelled exactly as mkt push writes it", ErrInvalidExtension, p)
	}
	i := 0
	for i < len(data) && i < len(canon) && data[i] == canon[i] {
		i++
	}
	return fmt.Errorf("%w: config is not the canonical JSON mkt push writes (exact keys in their order, no unknown keys, no extra spaces): at byte %d it has %s where the canonical form has %s",
		ErrInvalidExtension, i, excerpt(data, i), excerpt(canon, i))
}

func excerpt(b []byte, at int) string {
	if at >= len(b) {
		return "the end"
	}
	end := min(at+24, len(b))
	return fmt.Sprintf("%q", b[at:end])
}

// ambiguousKey finds the first object key that appears twice, exactly or
// differing only in case, and says where; "" if there is none.
func ambiguousKey(data []byte) string {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
		path    string
		keys    map[string]string // lower case → as written
	}
	child := func(f *frame) string {
		if f == nil {
			return ""
		}
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	}
	where := func(p string) string {
		if p == "" {
			return "at the top level"
		}
		return "in " + p
	}
	var stack []*frame
	top := func() *frame {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	valueDone := func() {
		if f := top(); f != nil {
			if f.object {
				f.wantKey = true
			} else {
				f.index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if f := top(); f != nil && f.object && f.wantKey {
			if k, ok := tok.(string); ok {
				lk := strings.ToLower(k)
				if prev, dup := f.keys[lk]; dup {
					if prev == k {
						return fmt.Sprintf("key %q appears twice %s", k, where(f.path))
					}
					return fmt.Sprintf("keys %q and %q %s differ only in case", prev, k, where(f.path))
				}
				f.keys[lk] = k
				f.key, f.wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, path: child(top()), keys: map[string]string{}})
		case json.Delim('['):
			stack = append(stack, &frame{path: child(top())})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
