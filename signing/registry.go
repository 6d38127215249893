package signing

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// Client talks to registries for signing and verification through
// go-containerregistry, as cosign does. It takes everything from remote.Options'
// registry client, the one oras-go uses too: its transport (TLS, CA file,
// timeouts, retries and, for Shared options, the one connection pool) and
// its credentials (Options.Credential, else the docker config). It reuses
// connections and tokens across calls and counts the requests it makes.
type Client struct {
	nameOpts  []name.Option
	remote    []ggcrremote.Option
	requests  atomic.Int64
	userAgent string
	// noReferrers holds, per registry host, when it last answered the OCI
	// referrers API as a registry without it does (404, 400 or 406).
	noReferrers sync.Map // host → time.Time
}

// NewClient builds a Client over o's registry client (o.AuthClient: the
// shared one when o holds it), so that signature and attestation reads
// send the same credentials over the same connections as artifact reads.
func NewClient(o remote.Options) (*Client, error) {
	ac, err := o.AuthClient()
	if err != nil {
		return nil, err
	}
	c := &Client{userAgent: ac.Header.Get("User-Agent")}
	if c.userAgent == "" {
		c.userAgent = remote.UserAgent
	}
	if o.PlainHTTP {
		c.nameOpts = append(c.nameOpts, name.Insecure)
	}
	base := http.DefaultTransport
	if ac.Client != nil && ac.Client.Transport != nil {
		base = ac.Client.Transport
	}
	counting := &clientTransport{base: base, c: c}
	kc := keychain{ac.Credential}
	puller, err := ggcrremote.NewPuller(ggcrremote.WithTransport(counting), ggcrremote.WithAuthFromKeychain(kc), ggcrremote.WithUserAgent(c.userAgent))
	if err != nil {
		return nil, err
	}
	pusher, err := ggcrremote.NewPusher(ggcrremote.WithTransport(counting), ggcrremote.WithAuthFromKeychain(kc), ggcrremote.WithUserAgent(c.userAgent))
	if err != nil {
		return nil, err
	}
	c.remote = []ggcrremote.Option{
		ggcrremote.WithTransport(counting),
		ggcrremote.WithAuthFromKeychain(kc),
		ggcrremote.WithUserAgent(c.userAgent),
		ggcrremote.Reuse(puller),
		ggcrremote.Reuse(pusher),
	}
	return c, nil
}

// Requests is how many HTTP requests the client has sent so far.
func (c *Client) Requests() int64 { return c.requests.Load() }

// remoteOpts are go-containerregistry's options for calls made with ctx.
func (c *Client) remoteOpts(ctx context.Context) []ggcrremote.Option {
	return append([]ggcrremote.Option{ggcrremote.WithContext(ctx)}, c.remote...)
}

func (c *Client) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, c.nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	return r, nil
}

// keychain hands go-containerregistry the credentials of the registry
// client oras-go uses (remote.Options.Credential, else the docker config),
// so both stacks authenticate the same way.
type keychain struct{ cred auth.CredentialFunc }

// Resolve is ResolveContext without a context.
func (k keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), res)
}

// ResolveContext asks the credential function for res's registry.
func (k keychain) ResolveContext(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	if k.cred == nil {
		return authn.Anonymous, nil
	}
	cred, err := k.cred(ctx, res.RegistryStr())
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", res.RegistryStr(), err)
	}
	if cred.Username == "" && cred.Password == "" && cred.RefreshToken == "" && cred.AccessToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: cred.Username, Password: cred.Password,
		IdentityToken: cred.RefreshToken, RegistryToken: cred.AccessToken,
	}), nil
}

// clientTransport counts the requests a Client sends and notes the
// registries that turn out to lack the referrers API.
type clientTransport struct {
	base http.RoundTripper
	c    *Client
}

func (t *clientTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	resp, err := t.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/referrers/") {
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable:
			// What go-containerregistry takes for "no referrers API" before
			// it falls back to the referrers tag.
			t.c.noReferrers.Store(r.URL.Host, time.Now())
		}
	}
	return resp, err
}

// referrersTTL is how long a registry found without the referrers API is
// read through the fallback tag alone before the API is tried again (a
// registry may be upgraded while the process runs).
const referrersTTL = 10 * time.Minute

// knownWithoutReferrers reports whether host recently answered the
// referrers API as a registry without it does.
func (c *Client) knownWithoutReferrers(host string) bool {
	at, ok := c.noReferrers.Load(host)
	return ok && time.Since(at.(time.Time)) < referrersTTL
}
