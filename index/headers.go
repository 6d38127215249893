package index

import (
	"net/http"
	"time"
)

// HTTP connection limits when the config sets none. Reads and writes are
// bounded so that a client that stops sending or reading cannot hold a
// connection (and its goroutine) forever; idle keep-alive connections are
// closed after a minute, well after a browser or mkt reuses them.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
)

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// contentSecurityPolicy allows the pages exactly what they use: their own
// stylesheet, their own script files (the extension page's copy button,
// web/static/copy.js), links and forms to the index itself, and nothing
// inline, no framing. Images only from the index: a README's images are
// never loaded (readme.go).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every response carries, pages and
// JSON alike: a strict CSP, no framing (clickjacking), no MIME sniffing of
// a JSON or text answer into HTML, and no query (a search) leaked to
// another site in a Referer.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// withSecurityHeaders sets them before next answers.
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}
