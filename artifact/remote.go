package artifact

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// RemoteOptions say how to reach a registry. The zero value means HTTPS with
// the system roots and the credentials of the default docker config.
type RemoteOptions struct {
	// PlainHTTP talks HTTP instead of HTTPS (local and test registries).
	PlainHTTP bool
	// Insecure skips TLS certificate verification.
	Insecure bool
	// CAFile adds the PEM certificates in this file to the system roots.
	CAFile string
	// RegistryConfig is a docker config.json to read credentials from;
	// "" means the docker default ($DOCKER_CONFIG or ~/.docker/config.json).
	RegistryConfig string
	// Credential, when set, is used instead of the docker config.
	Credential auth.CredentialFunc
	// UserAgent is sent with every request.
	UserAgent string
	// ConnectTimeout bounds the TCP dial and the TLS handshake, each; 0
	// means DefaultConnectTimeout, negative means none.
	ConnectTimeout time.Duration
	// Timeout is how long a registry may stay silent: from sending a
	// request (or the last byte of its body) to the response headers, and
	// between two reads of a body either way. Blobs stream for as long as
	// they keep moving. 0 means DefaultTimeout, negative means none.
	Timeout time.Duration
	// RequestTimeout bounds every request other than a blob transfer
	// (manifests, tags, referrers, tokens) as a whole, retries included; 0
	// means DefaultRequestTimeout, negative means none.
	RequestTimeout time.Duration
	// Client, when set, is the registry client shared by every repository
	// opened with these options, so that a long-running service (the
	// index) keeps its connections and tokens instead of dialing and
	// authenticating again for each artifact. TLS, credentials and the user
	// agent are then the client's; see Shared.
	Client *auth.Client
}

// Shared returns o with a Client built from it, for callers that open
// many repositories on the same registry.
func (o RemoteOptions) Shared() (RemoteOptions, error) {
	if o.Client != nil {
		return o, nil
	}
	c, err := o.AuthClient()
	if err != nil {
		return o, err
	}
	o.Client = c
	return o, nil
}

// UserAgent is the default User-Agent; the CLI appends its version.
const UserAgent = "mkt"

// HTTPClient builds the client every registry call goes through, oras-go's
// and go-containerregistry's alike: TLS as configured, the timeouts of o
// around everything, and oras-go's retry transport, which retries
// connection resets, 429 and 5xx with exponential backoff (not timeouts).
func (o RemoteOptions) HTTPClient() (*http.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	connect := orDefault(o.ConnectTimeout, DefaultConnectTimeout)
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	base.DialContext = dialer.DialContext
	base.TLSHandshakeTimeout = connect
	// Blobs are large: read them in big pieces, not net/http's default 4 KiB,
	// which costs a system call per 4 KiB of every layer.
	base.ReadBufferSize = 256 << 10
	base.WriteBufferSize = 256 << 10
	// Keep connections to a registry for the concurrent requests made to
	// it (verification fetches signatures, attestations and referrers at
	// once; the index ingests several artifacts at once). net/http keeps 2
	// per host, and each new connection costs a dial and 512 KiB of the
	// buffers above.
	base.MaxIdleConnsPerHost = 32
	if o.Insecure || o.CAFile != "" {
		cfg := &tls.Config{InsecureSkipVerify: o.Insecure} //nolint:gosec // asked for with --insecure
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
			}
			cfg.RootCAs = pool
		}
		base.TLSClientConfig = cfg
	}
	retrying := &retry.Transport{Base: base, Policy: func() retry.Policy { return registryRetry }}
	return &http.Client{Transport: &timeoutTransport{
		base:    retrying,
		silence: orDefault(o.Timeout, DefaultTimeout),
		request: orDefault(o.RequestTimeout, DefaultRequestTimeout),
		connect: connect,
	}}, nil
}

// CredentialStore opens the docker config named by the options.
func (o RemoteOptions) CredentialStore() (credentials.Store, error) {
	opts := credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true}
	if o.RegistryConfig != "" {
		return credentials.NewStore(o.RegistryConfig, opts)
	}
	return credentials.NewStoreFromDocker(opts)
}

// AuthClient is the authenticating client for registry calls.
func (o RemoteOptions) AuthClient() (*auth.Client, error) {
	if o.Client != nil {
		return o.Client, nil
	}
	hc, err := o.HTTPClient()
	if err != nil {
		return nil, err
	}
	cred := o.Credential
	if cred == nil {
		store, err := o.CredentialStore()
		if err != nil {
			return nil, fmt.Errorf("open registry config: %w", err)
		}
		cred = credentials.Credential(store)
	}
	c := &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: cred}
	c.SetUserAgent(firstNonEmpty(o.UserAgent, UserAgent))
	return c, nil
}

// NewRepository opens the repository of ref ("host/repo[:tag|@digest]").
func NewRepository(ref string, o RemoteOptions) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	client, err := o.AuthClient()
	if err != nil {
		return nil, err
	}
	repo.Client = client
	repo.PlainHTTP = o.PlainHTTP
	return repo, nil
}

// Login checks credentials against a registry and stores them in the
// docker config, as `docker login` and `oras login` do.
func Login(ctx context.Context, host string, cred auth.Credential, o RemoteOptions) error {
	store, err := o.CredentialStore()
	if err != nil {
		return fmt.Errorf("open registry config: %w", err)
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	hc, err := o.HTTPClient()
	if err != nil {
		return err
	}
	reg.PlainHTTP = o.PlainHTTP
	reg.Client = &auth.Client{Client: hc, Cache: auth.NewCache()}
	if err := credentials.Login(ctx, store, reg, cred); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	return nil
}

// Logout removes a registry's credentials from the docker config.
func Logout(ctx context.Context, host string, o RemoteOptions) error {
	store, err := o.CredentialStore()
	if err != nil {
		return fmt.Errorf("open registry config: %w", err)
	}
	if err := credentials.Logout(ctx, store, host); err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	return nil
}

// ParseReference splits "host/repo[:tag|@digest]" and checks it.
func ParseReference(ref string) (registry.Reference, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return r, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	return r, nil
}

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

// retryPolicy is how often and how patiently a streamed blob transfer is
// tried again. Tests shorten it.
type retryPolicy struct {
	attempts int
	wait     time.Duration
}

var blobRetry = retryPolicy{attempts: 4, wait: 250 * time.Millisecond}

func (p retryPolicy) do(ctx context.Context, what string, fn func() error) error {
	var err error
	wait := p.wait
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !IsTransient(err) || attempt >= p.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
	if err != nil && IsTransient(err) {
		return fmt.Errorf("%s: still failing after %d attempts: %w", what, p.attempts, err)
	}
	return err
}

// IsNotFound reports whether err means the registry has no such content.
func IsNotFound(err error) bool { return errors.Is(err, errdef.ErrNotFound) }
