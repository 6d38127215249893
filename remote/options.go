package remote

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Options say how to reach a registry. The zero value means HTTPS with
// the system roots and the credentials of the default docker config.
type Options struct {
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
	// opened with these options, by oras-go (artifact) and
	// go-containerregistry (signing) alike, so that a long-running service
	// (the index) keeps one connection pool and its tokens instead of
	// dialing and authenticating again for each artifact. TLS, timeouts,
	// credentials and the user agent are then the client's; see Shared.
	Client *auth.Client
}

// Shared returns o with a Client built from it, for callers that open
// many repositories on the same registry, through either OCI stack.
func (o Options) Shared() (Options, error) {
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
// Each call builds a new connection pool; callers that want one pool use
// Shared and take the transport of its Client.
func (o Options) HTTPClient() (*http.Client, error) {
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
func (o Options) CredentialStore() (credentials.Store, error) {
	opts := credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true}
	if o.RegistryConfig != "" {
		return credentials.NewStore(o.RegistryConfig, opts)
	}
	return credentials.NewStoreFromDocker(opts)
}

// AuthClient is the authenticating client for registry calls: the shared
// Client when o holds one, else a new one. oras-go uses it as it is;
// go-containerregistry takes its transport and its Credential, so both
// stacks send the same credentials over the same connections.
func (o Options) AuthClient() (*auth.Client, error) {
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
	ua := o.UserAgent
	if ua == "" {
		ua = UserAgent
	}
	c.SetUserAgent(ua)
	return c, nil
}
