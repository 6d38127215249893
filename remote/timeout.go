package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"
)

// Defaults of the Options timeouts. A registry that accepts a
// connection and then never answers must not hang a pull, a verification
// or an index crawl; a slow registry streaming a big blob must still be
// allowed to finish.
const (
	// DefaultConnectTimeout bounds the TCP dial and the TLS handshake, each.
	DefaultConnectTimeout = 15 * time.Second
	// DefaultTimeout is how long a registry may stay silent: before the
	// response headers, or between two reads of a body.
	DefaultTimeout = 60 * time.Second
	// DefaultRequestTimeout bounds a whole request other than a blob
	// transfer (manifests, tags, referrers, tokens), retries included.
	DefaultRequestTimeout = 2 * time.Minute
)

// TimeoutError says that a registry did not answer in time: where, while
// waiting for what, and which setting bounded the wait, so that the user
// can tell a dead registry from a slow one and raise the right limit. It
// is not transient: a registry that did not answer within the limit is not
// asked again, which would only multiply the wait.
type TimeoutError struct {
	// Host is the registry's host:port.
	Host string
	// Request is the method and path that went unanswered.
	Request string
	// Waiting says for what: "a connection", "response headers", "more of
	// the body" or "the whole request".
	Waiting string
	// Setting is the Options field that set Limit: ConnectTimeout,
	// Timeout or RequestTimeout.
	Setting string
	// Limit is how long was waited.
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("registry %s did not answer within %s: no %s for %s (limit set by %s)", e.Host, e.Limit, e.Waiting, e.Request, e.Setting)
}

// Timeout reports true, as net.Error timeouts do.
func (e *TimeoutError) Timeout() bool { return true }

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// timeoutTransport enforces Options' timeouts around the retrying
// transport, so that one limit bounds a request with all its retries.
// Silence is measured by a watchdog that any sign of life resets (a
// connection made, the request written, the first response byte, every
// read of a body either way), so a blob of any size streams for as long as
// it keeps moving.
type timeoutTransport struct {
	base    http.RoundTripper
	silence time.Duration // 0: none
	request time.Duration // 0: none
	connect time.Duration // for messages; the dialer and TLS enforce it
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.silence <= 0 && t.request <= 0 {
		resp, err := t.base.RoundTrip(req)
		if err != nil && req.Context().Err() == nil && t.connect > 0 {
			err = connectTimeoutError(req.URL.Host, t.connect, err)
		}
		return resp, err
	}
	parent := req.Context()
	ctx, cancel := context.WithCancelCause(parent)
	what := req.Method + " " + req.URL.Path
	fail := func(waiting, setting string, limit time.Duration) func() {
		return func() {
			cancel(&TimeoutError{Host: req.URL.Host, Request: what, Waiting: waiting, Setting: setting, Limit: limit})
		}
	}
	var stops []func() bool
	var w *stallWatch
	if t.silence > 0 {
		w = newStallWatch(t.silence, fail("connection or response headers", "Timeout", t.silence))
		stops = append(stops, w.stop)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			ConnectDone:      func(string, string, error) { w.progress() },
			TLSHandshakeDone: func(tls.ConnectionState, error) { w.progress() },
			GotConn: func(httptrace.GotConnInfo) {
				w.progress()
				w.setFire(fail("response headers", "Timeout", t.silence))
			},
			WroteRequest:         func(httptrace.WroteRequestInfo) { w.progress() },
			GotFirstResponseByte: w.progress,
		})
	}
	// Blob transfers stream for as long as they move; everything else is
	// small and also has a deadline of its own.
	if t.request > 0 && !strings.Contains(req.URL.Path, "/blobs/") {
		stops = append(stops, time.AfterFunc(t.request, fail("answer", "RequestTimeout", t.request)).Stop)
	}
	finish := func() {
		for _, s := range stops {
			s()
		}
		cancel(nil)
	}
	r := req.WithContext(ctx)
	if w != nil && req.Body != nil && req.Body != http.NoBody {
		r.Body = &progressBody{ReadCloser: req.Body, w: w}
		if req.GetBody != nil {
			r.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil || b == http.NoBody {
					return b, err
				}
				return &progressBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		if err = timeoutCause(ctx, parent, err); parent.Err() == nil && t.connect > 0 {
			err = connectTimeoutError(req.URL.Host, t.connect, err)
		}
		finish()
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		finish()
		return resp, nil
	}
	if w != nil {
		w.progress()
		w.setFire(fail("more of the body", "Timeout", t.silence))
	}
	resp.Body = &watchedBody{rc: resp.Body, w: w, ctx: ctx, parent: parent, finish: finish}
	return resp, nil
}

// timeoutCause replaces err with the TimeoutError that caused it, if one
// did; a dial or TLS handshake that timed out becomes one too.
func timeoutCause(ctx, parent context.Context, err error) error {
	if parent.Err() != nil {
		return err
	}
	var te *TimeoutError
	if errors.As(context.Cause(ctx), &te) {
		return te
	}
	return err
}

// stallWatch calls fire once limit passes without progress.
type stallWatch struct {
	limit time.Duration
	start time.Time
	last  atomic.Int64 // time since start of the last progress, in ns
	fire  atomic.Pointer[func()]
	done  atomic.Bool
	timer *time.Timer
}

func newStallWatch(limit time.Duration, fire func()) *stallWatch {
	w := &stallWatch{limit: limit, start: time.Now()}
	w.fire.Store(&fire)
	w.timer = time.AfterFunc(limit, w.check)
	return w
}

func (w *stallWatch) progress() { w.last.Store(int64(time.Since(w.start))) }

func (w *stallWatch) setFire(f func()) { w.fire.Store(&f) }

func (w *stallWatch) check() {
	if w.done.Load() {
		return
	}
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if idle < w.limit {
		w.timer.Reset(w.limit - idle)
		return
	}
	(*w.fire.Load())()
}

func (w *stallWatch) stop() bool {
	w.done.Store(true)
	return w.timer.Stop()
}

// progressBody is a request body whose reads count as progress: the
// transport reads it as fast as the registry takes the bytes.
type progressBody struct {
	io.ReadCloser
	w *stallWatch
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.progress()
	}
	return n, err
}

// watchedBody is a response body under the watchdog: reads are progress, a
// read cut by a timeout says so, and the end or Close releases the timers.
type watchedBody struct {
	rc     io.ReadCloser
	w      *stallWatch
	ctx    context.Context
	parent context.Context
	finish func()
	closed atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && b.w != nil {
		b.w.progress()
	}
	switch {
	case err == io.EOF:
		// net/http has already kept the connection for reuse when a body
		// reports its end, so the request's context may go.
		b.done()
	case err != nil:
		err = timeoutCause(b.ctx, b.parent, err)
	}
	return n, err
}

func (b *watchedBody) done() {
	if b.closed.CompareAndSwap(false, true) {
		b.finish()
	}
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.done()
	return err
}

// connectTimeoutError turns a dial or TLS handshake that timed out into a
// TimeoutError naming ConnectTimeout. The transport sets no other timeout,
// so a net.Error timeout that is not already a TimeoutError is one of them.
func connectTimeoutError(host string, limit time.Duration, err error) error {
	var te *TimeoutError
	var ne net.Error
	if !errors.As(err, &te) && errors.As(err, &ne) && ne.Timeout() {
		return &TimeoutError{Host: host, Request: "a new connection", Waiting: "connection", Setting: "ConnectTimeout", Limit: limit}
	}
	return err
}

// registryRetry is oras-go's default retry policy, except that a request that
// timed out is not retried: a registry that did not answer within the limit
// will not answer the next attempt either, and each retry would add the
// whole limit to the wait. Resets, 429 and 5xx are still retried.
var registryRetry retry.Policy = &retry.GenericPolicy{
	Retryable: func(resp *http.Response, err error) (bool, error) {
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			return false, err
		}
		return retry.DefaultPredicate(resp, err)
	},
	Backoff:  retry.DefaultBackoff,
	MinWait:  200 * time.Millisecond,
	MaxWait:  3 * time.Second,
	MaxRetry: 5,
}
