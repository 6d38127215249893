package artifact

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is one regular file of an extension, as its layer holds it: the
// path inside the extension, the size and whether it is packed with mode
// 0755. Readers that judge content (the review pipeline) see a directory
// and a pushed layer through the same File, so a check cannot differ
// between what a publisher checks locally and what was pushed.
type File struct {
	// Path is slash-separated and relative to the extension's root.
	Path string
	// Size is the content's length in bytes.
	Size int64
	// Executable is set when the file is packed (or was packed) 0755.
	Executable bool
}

// WalkFunc receives each file of an extension with its content, which is
// valid only until it returns. Returning an error stops the walk.
type WalkFunc func(f File, content io.Reader) error

// WalkDir calls fn for every regular file that Pack would put in dir's
// layer, in the layer's order, after the same include/exclude rules, and
// refuses what Pack refuses (links, special files). ext is dir's
// descriptor, for its include and exclude globs.
func WalkDir(ctx context.Context, dir string, ext *Extension, fn WalkFunc) error {
	entries, err := collect(dir, ext)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			continue
		}
		if err := walkFile(dir, e, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkFile(dir string, e entry, fn WalkFunc) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	lr := &exactReader{r: io.LimitReader(f, e.size), want: e.size, name: e.rel}
	if err := fn(File{Path: e.rel, Size: e.size, Executable: e.exec}, lr); err != nil {
		return err
	}
	// Whatever fn left unread is read here, so a file that shrank while
	// it was read is reported as Pack reports it.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return err
	}
	if lr.got != e.size {
		return fmt.Errorf("%s: changed while it was read: %d bytes, %d expected", e.rel, lr.got, e.size)
	}
	return nil
}

// exactReader counts what was read of a file that must have a given size.
type exactReader struct {
	r    io.Reader
	want int64
	got  int64
	name string
}

func (x *exactReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	x.got += int64(n)
	return n, err
}

// WalkLayer reads a tar+gzip content layer from r and calls fn for every
// regular file in it, holding each entry to the unpacker's rules and limits
// first (no absolute paths, "..", links, devices, sparse files,
// duplicates; file count, total size, compression ratio), and writes
// nothing. It reads r to its end, so a caller's digest check covers every
// byte. Directories are checked and skipped.
func WalkLayer(ctx context.Context, r io.Reader, limits Limits, fn WalkFunc) error {
	lr, err := newLayerReader(r, limits)
	if err != nil {
		return err
	}
	defer lr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, hdr, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(File{Path: name, Size: hdr.Size, Executable: hdr.Mode&0o111 != 0}, lr.tr); err != nil {
			return wrapTarError(err)
		}
	}
	if _, err := io.Copy(io.Discard, lr.plain); err != nil {
		return wrapTarError(err)
	}
	return nil
}
