// Package client is the light HTTP client of the index API (DESIGN §8):
// what Factory's Go API and `mkt resolve|install --index` link, without
// the index server's store, SQL drivers, metrics or templates. It only
// transports answers; checking them against what was asked and against
// the local policy is the caller's job (marketplace.Resolve does it),
// because an index is trusted to choose, never to verify.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/connectsoft/marketplace/resolve"
)

// Client is an index service as a resolution source: the index chooses,
// the registry serves, the local policy verifies.
type Client struct {
	// URL is the index's base URL (http://127.0.0.1:8080).
	URL string
	// Token, when set, is sent as the bearer token (a tenant's reader
	// token sees its private extensions).
	Token string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

// ResolveQuery is one GET /api/v1/resolve.
type ResolveQuery struct {
	Requirements []resolve.Requirement
	// Factory is the Factory version the choices must be compatible with.
	Factory string
	// Explain asks for the newer versions passed over, and why.
	Explain bool
	// Exclude names versions (NAME@VERSION) the index must resolve as if
	// they were not published: the ones the client refused. An index that
	// predates the parameter ignores it; the caller notices because the
	// answer names an excluded version again.
	Exclude []string
}

// Resolve asks the index to resolve reqs for a Factory version.
func (c *Client) Resolve(ctx context.Context, reqs []resolve.Requirement, factory string, explain bool) (*resolve.Resolution, error) {
	return c.ResolveQuery(ctx, ResolveQuery{Requirements: reqs, Factory: factory, Explain: explain})
}

// ResolveQuery asks the index to resolve q. A name the index cannot
// resolve (none published or visible, none acceptable, conflicts) is an
// error matching resolve.ErrUnresolvable, with the index's reason.
func (c *Client) ResolveQuery(ctx context.Context, q ResolveQuery) (*resolve.Resolution, error) {
	v := url.Values{"factory": {q.Factory}, "explain": {strconv.FormatBool(q.Explain)}}
	for _, r := range q.Requirements {
		n := r.Name
		if r.Constraint != "" {
			n += "@" + r.Constraint
		}
		v.Add("name", n)
	}
	for _, e := range q.Exclude {
		v.Add("exclude", e)
	}
	var res resolve.Resolution
	if err := c.get(ctx, "/api/v1/resolve", v, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// maxAnswer bounds what is read of one answer: a resolution is a few
// kilobytes, an index that streams without end must not exhaust memory.
const maxAnswer = 16 << 20

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.URL, "/")+path+"?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("index %s: %w", c.URL, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("index %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxAnswer)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(body).Decode(&e)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnprocessableEntity {
			return fmt.Errorf("%w: %s", resolve.ErrUnresolvable, e.Error)
		}
		return fmt.Errorf("index %s%s: %d %s", c.URL, path, resp.StatusCode, e.Error)
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("index %s%s: unreadable answer: %w", c.URL, path, err)
	}
	return nil
}
