package index

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store"
)

// StatementStore is what revenue-share statements need of the store:
// usage sums, versions with their terms, closed statements and who owns
// which publisher namespace.
type StatementStore interface {
	billing.Usage
	billing.Versions
	billing.CloseStore
	PublisherTenants(ctx context.Context) (map[string]string, error)
}

// NewBilling returns the statement builder over st: terms of a publisher
// with a publishers: entry that names keys count only when one of those
// keys signed them (DESIGN §6.1), so that a key the policy trusts for
// another publisher cannot set this one's prices.
func NewBilling(st StatementStore, publishers []Publisher) *billing.Builder {
	return &billing.Builder{Usage: st, Versions: st, Closed: st, PublisherKeys: func(p string) []string {
		if e := findPublisher(publishers, p); e != nil {
			return e.Fingerprints
		}
		return nil
	}}
}

// StatementOwners maps each publisher namespace to its tenant: the
// publishers: entries first, then the owners of the names in the store.
// A namespace whose names several tenants own maps to "" (no tenant owns
// its statement): names claimed one by one without a publishers: entry,
// or claimed by another tenant before the entry bound the namespace.
func StatementOwners(ctx context.Context, st StatementStore, publishers []Publisher) (map[string]string, error) {
	owners, err := st.PublisherTenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range publishers {
		if t, ok := owners[p.Name]; ok && t != p.Tenant {
			owners[p.Name] = "" // another tenant owns names of the namespace, claimed before the entry bound it
			continue
		}
		owners[p.Name] = p.Tenant
	}
	return owners, nil
}

// ErrSharedNamespace refuses the statement of a publisher namespace whose
// names several tenants own. A statement is one publisher's (issue 12)
// and one name has one owner across the index (DESIGN §6.1): previewing
// or closing it would show, sign and pay one owner for the others'
// customers and revenue, so the index builds none until the namespace
// has one owner.
var ErrSharedNamespace = errors.New("names of the publisher namespace are owned by several tenants")

// CheckStatementScope refuses, with ErrSharedNamespace, when any of
// names is a namespace owners maps to no single tenant, saying which and
// what the operator does about it.
func CheckStatementScope(owners map[string]string, names []string) error {
	var shared []string
	for _, p := range names {
		if t, ok := owners[p]; ok && t == "" {
			shared = append(shared, p)
		}
	}
	if len(shared) == 0 {
		return nil
	}
	slices.Sort(shared)
	return fmt.Errorf("statements of %s: %w, so one statement would mix their customers and revenue: "+
		"give each namespace one owner (a publishers: entry in the index config binding it to one tenant, "+
		"and the other tenants' names republished under namespaces of their own), then preview or close again",
		strings.Join(shared, ", "), ErrSharedNamespace)
}

// StatementEntry is one publisher's statement of a period as the API and
// mkt index statements list it: the statement and, once closed, where it
// was pushed and who signed it.
type StatementEntry struct {
	Publisher string `json:"publisher"`
	Period    string `json:"period"`
	Status    string `json:"status"`
	// Reference is the pushed artifact (repository@digest) of a closed
	// statement; empty while open, or closed and not yet pushed.
	Reference string `json:"reference,omitempty"`
	// Signer is the fingerprint of the key that signed a closed statement;
	// Signature its base64 signature of the statement's JSON.
	Signer    string             `json:"signer,omitempty"`
	Signature string             `json:"signature,omitempty"`
	Statement *billing.Statement `json:"statement"`
}

// ErrNoSuchPublisher is returned for a publisher the index knows nothing of.
var ErrNoSuchPublisher = errors.New("no such publisher")

// Statements returns the statements of period: of publisher, or of every
// publisher when it is "" (those of tenant only when tenant is not "").
// A namespace whose names several tenants own is refused
// (ErrSharedNamespace) rather than shown mixed; a tenant never selects
// one, since it maps to no tenant.
// Open periods are previews computed from the usage received so far.
func Statements(ctx context.Context, st StatementStore, publishers []Publisher, period, publisher, tenant string, now time.Time) ([]StatementEntry, error) {
	if _, _, err := billing.ParsePeriod(period); err != nil {
		return nil, err
	}
	owners, err := StatementOwners(ctx, st, publishers)
	if err != nil {
		return nil, err
	}
	var names []string
	for p, t := range owners {
		if (publisher == "" || p == publisher) && (tenant == "" || t == tenant) {
			names = append(names, p)
		}
	}
	if publisher != "" && len(names) == 0 {
		return nil, fmt.Errorf("statements of %s: %w", publisher, ErrNoSuchPublisher)
	}
	slices.Sort(names)
	if err := CheckStatementScope(owners, names); err != nil {
		return nil, err
	}
	b := NewBilling(st, publishers)
	out := []StatementEntry{}
	for _, p := range names {
		s, err := b.Preview(ctx, p, period, now)
		if err != nil {
			return nil, err
		}
		e := StatementEntry{Publisher: p, Period: period, Status: s.Status, Statement: s}
		if s.Status == billing.StatementClosed {
			closed, err := st.ClosedStatements(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, c := range closed {
				if c.Period == period {
					e.Reference, e.Signer, e.Signature = c.Reference, c.Signer, c.Signature
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// statements serves GET /api/v1/statements?period=YYYY-MM[&publisher=P]:
// a publisher's token (role publisher) sees the statements of the
// namespaces its tenant owns; the operator's admin token sees all; nobody
// else sees any.
func (a *API) statements(w http.ResponseWriter, r *http.Request) {
	entries, _, err := a.statementEntries(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": entries})
}

// statementEntries answers a request for statements, for the API and the
// web page alike: who may see what, and the entries of the period.
func (a *API) statementEntries(r *http.Request) ([]StatementEntry, string, error) {
	viewer, tok, err := a.viewer(r)
	if err != nil {
		return nil, "", err
	}
	if tok == nil {
		return nil, "", &apiError{http.StatusUnauthorized, "statements need a token of a publisher (role publisher) or of the operator (role admin)"}
	}
	st, ok := a.Store.(StatementStore)
	if !ok {
		return nil, "", &apiError{http.StatusNotImplemented, "this index's store keeps no statements"}
	}
	tenant := tok.Tenant
	switch {
	case viewer.Operator && slices.Contains(tok.Roles, "admin"):
		tenant = ""
	case !slices.Contains(tok.Roles, "publisher"):
		return nil, "", &apiError{http.StatusForbidden, "statements need the publisher role (or the operator's admin role)"}
	}
	q := r.URL.Query()
	period := q.Get("period")
	if period == "" {
		period = billing.PeriodOf(time.Now())
	}
	if _, _, err := billing.ParsePeriod(period); err != nil {
		return nil, "", &apiError{http.StatusBadRequest, err.Error()}
	}
	entries, err := Statements(r.Context(), st, a.Publishers, period, q.Get("publisher"), tenant, time.Now())
	if errors.Is(err, ErrNoSuchPublisher) {
		// Another tenant's publisher and an unknown one answer alike.
		return nil, "", &apiError{http.StatusNotFound, fmt.Sprintf("no statements of publisher %q for this token", q.Get("publisher"))}
	}
	if errors.Is(err, ErrSharedNamespace) {
		// Only the operator gets here: a tenant's token never selects a
		// namespace without a single owner.
		return nil, "", &apiError{http.StatusConflict, err.Error()}
	}
	return entries, period, err
}

// statements is the publisher's statements page: the same entries as the
// API, for the same bearer tokens.
func (wb *Web) statements(w http.ResponseWriter, r *http.Request) {
	entries, period, err := wb.API.statementEntries(r)
	if err != nil {
		wb.fail(w, err)
		return
	}
	wb.render(w, "statements", http.StatusOK, map[string]any{"Title": "Statements " + period, "Period": period, "Items": entries})
}

var _ StatementStore = store.Store(nil)
