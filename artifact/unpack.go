package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Limits bound what an unpacked layer may hold. Zero fields take the
// defaults of DefaultLimits; a negative field means "no limit".
type Limits struct {
	// MaxFiles is the most entries (files and directories) a layer may hold.
	MaxFiles int
	// MaxTotalSize is the most bytes of file content, summed.
	MaxTotalSize int64
	// MaxRatio is the most uncompressed bytes per compressed byte, checked
	// once RatioGrace bytes have come out of the decompressor.
	MaxRatio int64
	// RatioGrace lets small, very compressible layers through.
	RatioGrace int64
	// MaxPathLength bounds an entry's path; components are bounded at 255.
	MaxPathLength int
}

// DefaultLimits fit every real extension we know with a wide margin: an
// extension is source, templates and prompts, not a disk image.
var DefaultLimits = Limits{
	MaxFiles:      50_000,
	MaxTotalSize:  4 << 30,
	MaxRatio:      200,
	RatioGrace:    16 << 20,
	MaxPathLength: 1024,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxFiles != 0 {
		d.MaxFiles = l.MaxFiles
	}
	if l.MaxTotalSize != 0 {
		d.MaxTotalSize = l.MaxTotalSize
	}
	if l.MaxRatio != 0 {
		d.MaxRatio = l.MaxRatio
	}
	if l.RatioGrace != 0 {
		d.RatioGrace = l.RatioGrace
	}
	if l.MaxPathLength != 0 {
		d.MaxPathLength = l.MaxPathLength
	}
	return d
}

// UnpackStats says what an unpack wrote.
type UnpackStats struct {
	Files int
	Dirs  int
	Bytes int64
	// ContentDigest is the content digest of what was unpacked
	// (contentdigest.go), computed as it streamed.
	ContentDigest string
}

// UnsafeEntryError says which entry of a layer was refused and why. It
// matches ErrUnsafeContent with errors.Is.
type UnsafeEntryError struct {
	Entry  string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	if e.Entry == "" {
		return "unsafe content: " + e.Reason
	}
	return fmt.Sprintf("unsafe content: entry %q: %s", e.Entry, e.Reason)
}

// Is makes errors.Is(err, ErrUnsafeContent) hold.
func (e *UnsafeEntryError) Is(target error) bool { return target == ErrUnsafeContent }

// Unpack reads a tar+gzip layer from r and writes it under dir, which must
// exist and should be empty. Only regular files and directories are
// accepted; absolute paths, "..", links, devices, duplicates and anything over
// the limits are refused. Every write goes through an os.Root opened on dir,
// so nothing can land outside it even if a check were wrong. On error, dir
// may hold part of the layer: callers unpack into a staging directory (as
// Pull does) and discard it.
func Unpack(ctx context.Context, r io.Reader, dir string, limits Limits) (UnpackStats, error) {
	var st UnpackStats
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, err
	}
	defer root.Close()

	lr, err := newLayerReader(r, limits)
	if err != nil {
		return st, err
	}
	defer lr.Close()
	dirs := map[string]bool{".": true} // created, so MkdirAll is not asked again
	buf := make([]byte, 256<<10)
	ch := newContentHasher()
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name, hdr, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		if hdr.Typeflag == tar.TypeDir {
			if err := mkdirAll(root, dirs, name); err != nil {
				return st, err
			}
			st.Dirs++
			continue
		}
		if err := mkdirAll(root, dirs, path.Dir(name)); err != nil {
			return st, err
		}
		var body io.Reader = lr.tr
		if contentCounts(name) {
			ch.h.Reset()
			body = io.TeeReader(lr.tr, ch.h)
		}
		if err := writeEntry(root, name, hdr, body, buf); err != nil {
			return st, wrapTarError(err)
		}
		if contentCounts(name) {
			ch.add(ch.h.Sum(nil))
		}
		st.Files++
		st.Bytes += hdr.Size
	}
	// Read to the end so the caller's digest check covers every byte.
	if _, err := io.CopyBuffer(io.Discard, lr.plain, buf); err != nil {
		return st, wrapTarError(err)
	}
	st.ContentDigest = ch.digest()
	return st, nil
}

// layerReader walks a tar+gzip layer entry by entry and holds every entry
// to the unpacker's rules before its content is read: a clean relative
// name, no duplicates, a regular file or a directory (never a link, device
// or sparse file), and the file-count, total-size and ratio limits. Unpack
// writes what it hands out; ReadLayerDescriptor reads one file from it.
type layerReader struct {
	lim   Limits
	gz    *gzip.Reader
	plain *ratioReader
	tr    *tar.Reader
	seen  map[string]bool
	total int64 // logical bytes of the regular files handed out so far
}

func newLayerReader(r io.Reader, limits Limits) (*layerReader, error) {
	lim := limits.withDefaults()
	compressed := &countingReader{r: r}
	gz, err := gzip.NewReader(compressed)
	if err != nil {
		return nil, &UnsafeEntryError{Reason: "not a gzip stream: " + err.Error()}
	}
	plain := &ratioReader{r: gz, compressed: compressed, limits: lim}
	return &layerReader{lim: lim, gz: gz, plain: plain, tr: tar.NewReader(plain), seen: map[string]bool{}}, nil
}

func (l *layerReader) Close() error { return l.gz.Close() }

// next returns the next entry's cleaned name and header, or io.EOF. The
// entry's content is read from l.tr.
func (l *layerReader) next() (string, *tar.Header, error) {
	hdr, err := l.tr.Next()
	if err == io.EOF {
		return "", nil, io.EOF
	}
	if err != nil {
		return "", nil, wrapTarError(err)
	}
	name, err := entryName(hdr.Name, l.lim)
	if err != nil {
		return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: err.Error()}
	}
	if l.seen[name] {
		return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: "duplicate entry"}
	}
	l.seen[name] = true
	if l.lim.MaxFiles > 0 && len(l.seen) > l.lim.MaxFiles {
		return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: fmt.Sprintf("more than %d entries", l.lim.MaxFiles)}
	}
	// A sparse entry stores only its data blocks and expands to its full
	// logical size on extraction: a few hundred compressed bytes can claim
	// gigabytes of zeros that the ratio check never sees, since they never
	// pass through the decompressor. Our packer never writes one.
	if isSparse(hdr) {
		return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: fmt.Sprintf("is a sparse file (claims %d bytes): only regular files and directories are allowed", hdr.Size)}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
	case tar.TypeReg: // the reader already maps old TypeRegA entries to TypeReg
		// Charge the declared (logical) size before a byte is written.
		if hdr.Size < 0 || (l.lim.MaxTotalSize > 0 && l.total+hdr.Size > l.lim.MaxTotalSize) {
			return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: fmt.Sprintf("declares %d bytes, over the %d-byte total limit", hdr.Size, l.lim.MaxTotalSize)}
		}
		l.total += hdr.Size
	default:
		return "", nil, &UnsafeEntryError{Entry: hdr.Name, Reason: "is a " + typeName(hdr.Typeflag) + ": only regular files and directories are allowed"}
	}
	return name, hdr, nil
}

// isSparse reports whether hdr is a GNU sparse entry, in the old GNU
// format (type 'S') or in any of the PAX forms (GNU.sparse.* records),
// which archive/tar expands transparently.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func mkdirAll(root *os.Root, dirs map[string]bool, dir string) error {
	if dirs[dir] {
		return nil
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("unpack %s: %w", dir, err)
	}
	for d := dir; d != "." && !dirs[d]; d = path.Dir(d) {
		dirs[d] = true
	}
	return nil
}

func writeEntry(root *os.Root, name string, hdr *tar.Header, r io.Reader, buf []byte) error {
	// 0644 or 0755, narrowed by the umask as tar and unzip do; the owner's
	// exec bit survives any usual umask.
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	err = copyFull(f, r, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	return nil
}

// copyFull copies r to w writing whole buffers, since a decompressor hands
// out small pieces and each write is a system call.
func copyFull(w io.Writer, r io.Reader, buf []byte) error {
	for {
		n, err := fill(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// entryName validates a tar entry name and returns it cleaned, without a
// trailing slash.
func entryName(raw string, lim Limits) (string, error) {
	name := strings.TrimSuffix(raw, "/")
	name = strings.TrimPrefix(name, "./")
	switch {
	case name == "" || name == ".":
		return "", errors.New("empty name")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute path")
	case strings.ContainsRune(name, 0):
		return "", errors.New("NUL byte in name")
	case strings.Contains(name, `\`):
		return "", errors.New("backslash in name")
	case lim.MaxPathLength > 0 && len(name) > lim.MaxPathLength:
		return "", fmt.Errorf("path longer than %d bytes", lim.MaxPathLength)
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "..":
			return "", errors.New("path traversal (..)")
		case part == "" || part == ".":
			return "", errors.New("not a clean path")
		case len(part) > 255:
			return "", errors.New("path component longer than 255 bytes")
		}
	}
	return name, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeXGlobalHeader:
		return "PAX global header"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry of type %q", t)
}

// wrapTarError keeps limit errors as they are and marks malformed archives
// as unsafe content, so callers need one errors.Is check.
func wrapTarError(err error) error {
	var ue *UnsafeEntryError
	if errors.As(err, &ue) || errors.Is(err, ErrDigestMismatch) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &UnsafeEntryError{Reason: "malformed layer: " + err.Error()}
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader stops a decompression bomb: it fails once the output grows
// past MaxRatio times the input read so far.
type ratioReader struct {
	r          io.Reader
	n          int64
	compressed *countingReader
	limits     Limits
}

func (r *ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if l := r.limits; l.MaxRatio > 0 && r.n > l.RatioGrace && r.n > l.MaxRatio*max(r.compressed.n, 1) {
		return n, &UnsafeEntryError{Reason: fmt.Sprintf("compression ratio over %d:1 (%d bytes from %d)", l.MaxRatio, r.n, r.compressed.n)}
	}
	return n, err
}
