package testenv

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// FaultKind is the sort of failure a FaultProxy injects.
type FaultKind int

// The faults a FaultProxy can inject. They are the one fake in testenv: a
// real network drops connections rarely and never on cue.
const (
	// Reset closes the client connection abruptly (TCP RST) without an answer.
	Reset FaultKind = iota
	// Status answers with Fault.Status (e.g. 503) instead of forwarding.
	Status
	// Truncate forwards the response but cuts its body after Fault.After bytes.
	Truncate
	// Slow forwards the response body in 32 KiB pieces, Fault.Delay apart.
	Slow
	// Corrupt flips one byte of the response body at offset Fault.After, as
	// a compromised registry or a man in the middle would serve it.
	Corrupt
	// Stall holds the request for Fault.Delay, or until the client gives
	// up, before forwarding it: a registry too slow to answer, even for
	// small responses that Slow delivers in one piece.
	Stall
)

// Fault describes one injected failure.
type Fault struct {
	Kind FaultKind
	// Method and PathContains select requests ("" matches any).
	Method       string
	PathContains string
	// Times is how many matching requests fail; 0 or less means all of them.
	Times  int
	Status int
	After  int64
	Delay  time.Duration
}

// FaultProxy is a reverse proxy in front of a registry that fails requests
// on purpose. Requests that match no fault pass through unchanged.
type FaultProxy struct {
	// Host is the proxy's host:port, used in place of the registry's.
	Host string

	mu     sync.Mutex
	faults []*Fault
	hits   int
	paths  []string            // of every request, in order
	conns  map[string][]string // client address → user agents seen on it
	srv    *http.Server
}

// StartFaultProxy starts a proxy to the plain-HTTP registry at upstream.
func StartFaultProxy(upstream string) (*FaultProxy, error) {
	target := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the client's Host so the registry's upload Locations
			// point back through the proxy.
			r.Out.Host = r.In.Host
		},
		ErrorLog:      log.New(io.Discard, "", 0),
		FlushInterval: -1,
	}
	p := &FaultProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.Host = ln.Addr().String()
	p.srv = &http.Server{Handler: p.handler(rp), ErrorLog: log.New(io.Discard, "", 0)}
	go p.srv.Serve(ln)
	return p, nil
}

// Inject adds a fault; faults are tried in the order they were added.
func (p *FaultProxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := f
	p.faults = append(p.faults, &cp)
}

// Clear removes every fault and resets the hit counter.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.hits, p.paths, p.conns = nil, 0, nil, nil
}

// Connections maps each client connection (its address) the proxy has
// served requests on since the last Clear to the distinct User-Agents of
// those requests: a way to see how many connections a client opens and
// which of its HTTP stacks share them.
func (p *FaultProxy) Connections() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]string, len(p.conns))
	for c, uas := range p.conns {
		out[c] = append([]string(nil), uas...)
	}
	return out
}

// Hits is how many requests a fault was injected into.
func (p *FaultProxy) Hits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

// Requests is how many requests the proxy has seen, faulty or not: a way to
// count what a client costs the registry.
func (p *FaultProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.paths)
}

// RequestsTo is how many requests the proxy has seen whose path contains
// part: what one kind of call costs the registry.
func (p *FaultProxy) RequestsTo(part string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, path := range p.paths {
		if strings.Contains(path, part) {
			n++
		}
	}
	return n
}

// Close stops the proxy.
func (p *FaultProxy) Close() error { return p.srv.Close() }

func (p *FaultProxy) match(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, r.URL.Path)
	if p.conns == nil {
		p.conns = map[string][]string{}
	}
	if ua := r.UserAgent(); !slices.Contains(p.conns[r.RemoteAddr], ua) {
		p.conns[r.RemoteAddr] = append(p.conns[r.RemoteAddr], ua)
	}
	for _, f := range p.faults {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.PathContains != "" && !strings.Contains(r.URL.Path, f.PathContains) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				f.Times = -1 // spent
			}
		} else if f.Times < 0 {
			continue
		}
		p.hits++
		return f
	}
	return nil
}

func (p *FaultProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.match(r)
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		switch f.Kind {
		case Reset:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tcp, ok := conn.(*net.TCPConn); ok {
						tcp.SetLinger(0)
					}
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case Status:
			io.Copy(io.Discard, r.Body)
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected by testenv fault proxy"}]}`, f.Status)
		case Truncate:
			next.ServeHTTP(&truncatingWriter{ResponseWriter: w, left: f.After}, r)
			// Returning with fewer bytes than Content-Length makes the
			// server close the connection: the client sees a short body.
			panic(http.ErrAbortHandler)
		case Slow:
			next.ServeHTTP(&slowWriter{ResponseWriter: w, delay: f.Delay}, r)
		case Corrupt:
			next.ServeHTTP(&corruptingWriter{ResponseWriter: w, at: f.After}, r)
		case Stall:
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			select {
			case <-t.C:
				next.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		}
	})
}

type truncatingWriter struct {
	http.ResponseWriter
	left int64
}

func (t *truncatingWriter) Write(b []byte) (int, error) {
	if t.left <= 0 {
		return 0, io.ErrShortWrite
	}
	if int64(len(b)) > t.left {
		b = b[:t.left]
	}
	n, err := t.ResponseWriter.Write(b)
	t.left -= int64(n)
	if t.left <= 0 {
		if fl, ok := t.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
	}
	return n, err
}

type slowWriter struct {
	http.ResponseWriter
	delay time.Duration
}

func (s *slowWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), 32<<10)
		m, err := s.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		if fl, ok := s.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		time.Sleep(s.delay)
		b = b[n:]
	}
	return written, nil
}

type corruptingWriter struct {
	http.ResponseWriter
	at, off int64
}

func (c *corruptingWriter) Write(b []byte) (int, error) {
	if c.at >= c.off && c.at < c.off+int64(len(b)) {
		b = append([]byte(nil), b...)
		b[c.at-c.off] ^= 0xff
	}
	c.off += int64(len(b))
	return c.ResponseWriter.Write(b)
}
