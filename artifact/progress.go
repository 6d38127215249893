package artifact

import (
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ProgressEvent reports one step of a transfer, for progress bars and logs.
type ProgressEvent struct {
	// Desc is the blob or manifest being moved.
	Desc ocispec.Descriptor
	// Status is "uploading", "downloading", "exists", "done" or "retrying".
	Status string
	// Done is how many bytes of Desc have moved so far.
	Done int64
}

// ProgressFunc receives progress events; it must be cheap and safe for
// concurrent use, since blobs move in parallel.
type ProgressFunc func(ProgressEvent)

func (f ProgressFunc) emit(desc ocispec.Descriptor, status string, done int64) {
	if f != nil {
		f(ProgressEvent{Desc: desc, Status: status, Done: done})
	}
}

// progressReader reports bytes as they are read, at most every 256 KiB.
type progressReader struct {
	r      io.Reader
	desc   ocispec.Descriptor
	status string
	f      ProgressFunc
	done   int64
	last   int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.last >= 256<<10 || (err != nil && p.done != p.last) {
		p.last = p.done
		p.f.emit(p.desc, p.status, p.done)
	}
	return n, err
}

func withProgress(r io.Reader, desc ocispec.Descriptor, status string, f ProgressFunc, start int64) io.Reader {
	if f == nil {
		return r
	}
	return &progressReader{r: r, desc: desc, status: status, f: f, done: start, last: start}
}
