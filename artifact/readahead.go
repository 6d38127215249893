package artifact

import (
	"io"
	"sync"
)

// readAhead reads its source in a goroutine into a few fixed buffers, so
// that fetching and hashing a layer overlap with decompressing and writing
// it. Memory stays bounded at count×size bytes however large the layer.
type readAhead struct {
	chunks chan raChunk
	free   chan []byte
	done   chan struct{}
	wg     sync.WaitGroup
	cur    raChunk
	off    int
	closed bool
}

type raChunk struct {
	buf []byte
	n   int
	err error
}

func newReadAhead(src io.Reader, count, size int) *readAhead {
	ra := &readAhead{
		chunks: make(chan raChunk, count),
		free:   make(chan []byte, count),
		done:   make(chan struct{}),
	}
	for i := 0; i < count; i++ {
		ra.free <- make([]byte, size)
	}
	ra.wg.Add(1)
	go ra.fill(src)
	return ra
}

func (ra *readAhead) fill(src io.Reader) {
	defer ra.wg.Done()
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		}
		n, err := fill(src, buf)
		select {
		case ra.chunks <- raChunk{buf: buf, n: n, err: err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off >= ra.cur.n {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf
		}
		ra.cur, ra.off = <-ra.chunks, 0
	}
	n := copy(p, ra.cur.buf[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// Close stops the reading goroutine and waits for it, so the source may be
// closed or inspected safely afterwards.
func (ra *readAhead) Close() error {
	if !ra.closed {
		ra.closed = true
		close(ra.done)
		ra.wg.Wait()
	}
	return nil
}

// fill reads from r until buf is full or r fails, and returns the error as
// r gave it (io.EOF included), unlike io.ReadFull, which turns a short read
// into io.ErrUnexpectedEOF and so hides whether the source itself was cut.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		n += m
	}
	return n, err
}
