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
// *APIError matching resolve.ErrUnresolvable, with the index's reason; one
// with no visible versions also matches resolve.ErrNotPublished.
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

// SearchQuery is one GET /api/v1/extensions; empty fields do not filter.
type SearchQuery struct {
	// Text is words, each of which must begin a word of the name, title,
	// description or keywords.
	Text      string
	Kind      string
	Publisher string
	License   string
	// Factory keeps extensions compatible with this Factory version.
	Factory string
	// Reviewed, when set, keeps reviewed (true) or unreviewed (false) ones.
	Reviewed *bool
	// Page is 1-based, 20 results per page; 0 means the first.
	Page int
}

// Summary is an extension in a search result: its latest version (the
// highest stable SemVer) as the caller may see it. The index serves this
// type: its JSON is the API's.
type Summary struct {
	Name        string   `json:"name"`
	Tenant      string   `json:"tenant"`
	Kind        string   `json:"kind"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
	Latest      string   `json:"latestVersion"`
	License     string   `json:"license"`
	Factory     string   `json:"factory"`
	Signed      bool     `json:"signed"`
	Reviewed    bool     `json:"reviewed"`
	Allowed     bool     `json:"allowed"`
	// Verdict is what the stored decision says (passed, denied,
	// audit-would-deny, no-policy), for badges that tell the truth: an
	// audit-mode decision allows what it would deny.
	Verdict    string `json:"verdict"`
	Visibility string `json:"visibility"`
	// Stage is the stage of the version's source (internal, enterprise,
	// public), "" when it has none; Quarantined says it has not passed
	// that stage's policy, which only its tenant and reviewers see.
	Stage       string `json:"stage,omitempty"`
	Quarantined bool   `json:"quarantined"`
}

// SearchPage is one page of search results.
type SearchPage struct {
	Items []Summary `json:"items"`
	Total int       `json:"total"`
	Page  int       `json:"page"`
}

// Search asks the index for the extensions q matches.
func (c *Client) Search(ctx context.Context, q SearchQuery) (*SearchPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Text, "kind": q.Kind, "publisher": q.Publisher, "license": q.License, "factory": q.Factory} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Reviewed != nil {
		v.Set("reviewed", strconv.FormatBool(*q.Reviewed))
	}
	if q.Page > 0 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	var page SearchPage
	if err := c.get(ctx, "/api/v1/extensions", v, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// maxAnswer bounds what is read of one answer: a resolution is a few
// kilobytes, an index that streams without end must not exhaust memory.
const maxAnswer = 16 << 20

// get asks for path?q and decodes the answer into out; an error answer is
// an *APIError.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	endpoint := strings.TrimSuffix(c.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
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
		var b ErrorBody
		json.NewDecoder(body).Decode(&b) // an answer without a body still has its status
		e := b.Error
		if e.Code == "" {
			e.Code = CodeOf(resp.StatusCode)
			if path == "/api/v1/resolve" && resp.StatusCode == http.StatusNotFound {
				e.Code = CodeNotPublished // what an index before codes meant
			}
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return &APIError{URL: endpoint, Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("index %s: unreadable answer: %w", endpoint, err)
	}
	return nil
}
