package artifact

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"oras.land/oras-go/v2/content"
)

// The content digest names what an extension holds apart from how it is
// named and packed: the SHA-256 of the sorted list of the SHA-256 digests
// of its regular files, extension.yaml at the root excepted. Republishing
// the same files under another name, version or publisher changes the
// descriptor, the config and so the layer and manifest digests, but not
// the content digest; neither do file paths, modes, order or compression,
// so a renamed directory does not hide the files either. A control list
// (package control) blocks content by it. An extension that holds only its
// descriptor has no content digest ("").
//
// It is computed while the layer streams (Unpack, LayerContentDigest) or
// from the files on disk (DirContentDigest), never by holding a file.

// ContentDigestPrefix starts every content digest.
const ContentDigestPrefix = "sha256:"

// contentHasher collects the per-file digests of one extension.
type contentHasher struct {
	files []string // hex SHA-256 of each counted file
	h     hash.Hash
}

func newContentHasher() *contentHasher { return &contentHasher{h: sha256.New()} }

// counts reports whether the file at name (a cleaned slash path relative
// to the extension's root) is part of the content digest.
func contentCounts(name string) bool { return name != DescriptorFile }

// file hashes r as one file's content.
func (c *contentHasher) file(r io.Reader, buf []byte) error {
	c.h.Reset()
	if _, err := io.CopyBuffer(c.h, r, buf); err != nil {
		return err
	}
	c.add(c.h.Sum(nil))
	return nil
}

func (c *contentHasher) add(sum []byte) { c.files = append(c.files, hex.EncodeToString(sum)) }

// digest is the content digest of the files hashed so far.
func (c *contentHasher) digest() string {
	if len(c.files) == 0 {
		return ""
	}
	files := slices.Clone(c.files)
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "sha256:%s\n", f)
	}
	return ContentDigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// LayerContentDigest reads a whole tar+gzip layer from r under the
// unpacker's rules and limits and returns its content digest, writing
// nothing. The caller checks the layer's digest on r (as
// ContentDigestOf does).
func LayerContentDigest(ctx context.Context, r io.Reader, limits Limits) (string, error) {
	lr, err := newLayerReader(r, limits)
	if err != nil {
		return "", err
	}
	defer lr.Close()
	ch := newContentHasher()
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		name, hdr, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if hdr.Typeflag == tar.TypeReg && contentCounts(name) {
			if err := ch.file(lr.tr, buf); err != nil {
				return "", wrapTarError(err)
			}
		}
	}
	if _, err := io.CopyBuffer(io.Discard, lr.plain, buf); err != nil {
		return "", wrapTarError(err)
	}
	return ch.digest(), nil
}

// ContentDigestOf streams a's layer from src through its digest check and
// returns its content digest: what `mkt verify` and the index compute when
// a policy consults a control list, without unpacking anything.
func ContentDigestOf(ctx context.Context, src content.Fetcher, a *Artifact, limits Limits) (string, error) {
	layer := a.Layer()
	rc, err := src.Fetch(ctx, layer)
	if err != nil {
		return "", fmt.Errorf("fetch layer %s of %s: %w", layer.Digest, a.Reference, wrapFetchError(err))
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, layer)
	d, err := LayerContentDigest(ctx, vr, limits)
	if err != nil {
		return "", fmt.Errorf("%s: layer %s: %w", a.Reference, layer.Digest, err)
	}
	if err := readToVerify(vr, a); err != nil {
		return "", err
	}
	return d, nil
}

// DirContentDigest is the content digest of an unpacked extension in dir,
// as installed: `mkt audit` compares it with the one recorded at install to
// find files changed since, and matches it against a control list. Only
// regular files count, as only they are ever unpacked; a symbolic link is
// not followed (the unpacker never writes one, so it is a change).
func DirContentDigest(dir string) (string, error) {
	ch := newContentHasher()
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			// Not something an unpack writes: count its name so that the
			// directory's digest differs from the installed one.
			ch.files = append(ch.files, "irregular:"+rel)
			return nil
		case !contentCounts(rel):
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return ch.file(f, buf)
	})
	if err != nil {
		return "", fmt.Errorf("content digest of %s: %w", dir, err)
	}
	return ch.digest(), nil
}

// IsContentDigest reports whether s has the form of a content digest.
func IsContentDigest(s string) bool {
	hexPart, ok := strings.CutPrefix(s, ContentDigestPrefix)
	if !ok || len(hexPart) != 64 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil && strings.ToLower(hexPart) == hexPart
}
