package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"oras.land/oras-go/v2/registry/remote/errcode"
)

// IsTransient reports whether err is worth another attempt: a dropped or
// reset connection, a truncated body, a timeout, 429 or a 5xx. The retry
// transport already retries requests it can replay; this covers streamed
// bodies it cannot (blob uploads from files, blob downloads cut mid-way).
func IsTransient(err error) bool {
	var te *TimeoutError
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		if resp.Method == http.MethodGet || resp.Method == http.MethodHead {
			// The retry transport has already retried these as often as
			// its policy allows; asking again would only multiply waits.
			return false
		}
		return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// A connection that failed under a request (reset, closed while the
	// body was still being written, refused) is a network fault, whatever
	// words the kernel or net/http chose for it.
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, net.ErrClosed) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
