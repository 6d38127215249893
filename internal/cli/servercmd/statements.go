package servercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/signing"
)

// Statements previews the revenue-share statements of a period from the
// config's store or, with Close, freezes, signs and pushes them.
func (Commands) Statements(ctx context.Context, env serverapi.Env, o serverapi.StatementsOptions) (serverapi.Result, error) {
	if _, _, err := billing.ParsePeriod(o.Period); err != nil {
		return nil, serverapi.UsageError{Err: err}
	}
	if o.Close && (o.Key == "" || o.To == "") {
		return nil, serverapi.UsageError{Err: errors.New("--close needs --key (the operator's signing key) and --to (registry/repository to push to)")}
	}
	if !o.Close && (o.Key != "" || o.To != "") {
		return nil, serverapi.UsageError{Err: errors.New("--key and --to are for --close")}
	}
	c, err := index.LoadConfig(o.Config)
	if err != nil {
		return nil, err
	}
	st, err := index.OpenStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if !o.Close {
		entries, err := index.Statements(ctx, st, c.Publishers, o.Period, o.Publisher, "", time.Now())
		if err != nil {
			return nil, err
		}
		return &statementsResult{Items: entries}, nil
	}
	signer, err := signing.LoadSigner(ctx, o.Key, signing.EnvPassword)
	if err != nil {
		return nil, err
	}
	owners, err := index.StatementOwners(ctx, st, c.Publishers)
	if err != nil {
		return nil, err
	}
	publishers := []string{o.Publisher}
	if o.Publisher == "" {
		publishers = publishers[:0]
		for p := range owners {
			publishers = append(publishers, p)
		}
		slices.Sort(publishers)
		if len(publishers) > 1 && strings.Contains(o.To[strings.LastIndex(o.To, "/")+1:], ":") {
			return nil, serverapi.UsageError{Err: errors.New("--to names a tag, and several publishers are closed: give a repository (each statement is tagged <publisher>-<period>) or --publisher")}
		}
	}
	// Nothing is closed while any namespace in scope has several owners:
	// a signed statement mixing them could not be taken back.
	if err := index.CheckStatementScope(owners, publishers); err != nil {
		return nil, err
	}
	b := index.NewBilling(st, c.Publishers)
	res := &closedResult{Items: []*billing.ClosedResult{}}
	for _, p := range publishers {
		r, err := b.Close(ctx, st, p, o.Period, billing.CloseOptions{Signer: signer, To: o.To, Remote: env.Remote})
		if err != nil {
			return nil, err
		}
		res.Items = append(res.Items, r)
	}
	return res, nil
}

type statementsResult struct {
	Items []index.StatementEntry `json:"items"`
}

func (r *statementsResult) PrintText(stdout, stderr io.Writer) {
	if len(r.Items) == 0 {
		fmt.Fprintln(stderr, "No publishers.")
	}
	for _, e := range r.Items {
		printStatement(stdout, e.Statement)
		if e.Reference != "" {
			fmt.Fprintf(stdout, "  pushed to %s, signed by %s\n", e.Reference, e.Signer)
		}
	}
}

func printStatement(w io.Writer, s *billing.Statement) {
	fmt.Fprintf(w, "%s %s (%s, usage received before %s)\n", s.Publisher, s.Period, s.Status, s.Cutoff.Format(time.RFC3339))
	for _, l := range s.Lines {
		what := l.Model
		if l.Status == billing.StatusNoTerms {
			what = "no terms"
		}
		adj := ""
		if l.Adjustment {
			adj = " adjustment of " + l.OriginalPeriod
		}
		fmt.Fprintf(w, "  %-28s %-12s %-9s pulls %d installs %d seats %d units %d", l.Extension, l.Tenant, what, l.Pulls, l.Installs, l.Seats, l.Units)
		if l.Currency != "" {
			fmt.Fprintf(w, " × %s = %s %s (platform %s, publisher %s)", l.UnitPrice, l.Gross, l.Currency, l.PlatformShare, l.PublisherShare)
		}
		fmt.Fprintf(w, "%s\n", adj)
	}
	for _, t := range s.Totals {
		fmt.Fprintf(w, "  total %s %s: platform %s, publisher %s\n", t.Currency, t.Gross, t.PlatformShare, t.PublisherShare)
	}
	// Why a line has no terms (terms by a key not the publisher's, an
	// unknown currency): without it the text says "no terms" and nothing
	// of the terms that were attested and ignored.
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

type closedResult struct {
	Items []*billing.ClosedResult `json:"items"`
}

func (r *closedResult) PrintText(stdout, stderr io.Writer) {
	for _, c := range r.Items {
		printStatement(stdout, c.Statement)
		fmt.Fprintf(stderr, "Closed %s %s: pushed to %s (tag %s), signed by %s\n", c.Publisher, c.Period, c.Reference, c.Tag, c.Signer)
	}
}
