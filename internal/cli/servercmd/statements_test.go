package servercmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/internal/cli/servercmd"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// TestClosingASharedNamespaceSignsNothing runs on both stores. The
// namespace acme has names of two tenants (no publishers: entry), so a
// statement of acme would pay one owner, under one signature, for the
// other's customers: mkt index statements refuses to preview or close it,
// with --publisher acme and without --publisher, and no statement is
// frozen or signed. The namespace solo, of one owner, still closes when
// asked for alone: the refusal is the shared namespace's, not the index's.
func TestClosingASharedNamespaceSignsNothing(t *testing.T) {
	reg, err := testenv.StartDistribution(testenv.DistributionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	for _, c := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "index.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresSchema(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			url := c.url(t)
			st, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			at := time.Now().UTC().AddDate(0, -2, 0)
			period := billing.PeriodOf(at)
			storetest.SharedNamespace(t, st, at)
			solo := &store.Version{Tenant: "solo", Name: "solo/x", Version: "1.0.0", Repository: "reg-solo/solo/x", Digest: "sha256:" + strings.Repeat("c", 64),
				Kind: "Connector", Visibility: store.Private}
			if _, err := st.ClaimName(ctx, solo.Name, solo.Tenant, solo.Repository); err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpsertVersion(ctx, solo); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RecordUsage(ctx, []*store.UsageEvent{{Source: "test", ID: "solo", At: at, Tenant: "buyer", Owner: "solo", Publisher: "solo",
				Name: solo.Name, Version: "1.0.0", Digest: solo.Digest, Type: store.UsagePull, Quantity: 1}}); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(dir, "index.yaml")
			if err := os.WriteFile(config, []byte("store: "+url+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fixture.KeyPair(t, dir, "operator")
			t.Setenv(signing.PasswordEnv, "pw")
			env := serverapi.Env{Stderr: os.Stderr, Remote: remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}}
			run := func(publisher string, close bool) error {
				o := serverapi.StatementsOptions{Config: config, Period: period, Publisher: publisher, Close: close}
				if close {
					o.Key, o.To = filepath.Join(dir, "operator.key"), reg.Ref("statements/"+c.name)
				}
				_, err := servercmd.Commands{}.Statements(ctx, env, o)
				return err
			}
			for _, publisher := range []string{"", "acme"} {
				for _, close := range []bool{false, true} {
					err := run(publisher, close)
					if !errors.Is(err, index.ErrSharedNamespace) || !strings.Contains(err.Error(), "statements of acme:") || !strings.Contains(err.Error(), "publishers:") {
						t.Errorf("statements --publisher %q (close %v) of a namespace of two owners: %v, want a refusal naming acme and telling to bind it with publishers:", publisher, close, err)
					}
				}
			}
			closed, err := st.ClosedStatements(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(closed) != 0 {
				t.Fatalf("refused closes froze %d statements (first %s %s): one would be signed mixing two owners' revenue", len(closed), closed[0].Publisher, closed[0].Period)
			}
			if err := run("solo", true); err != nil {
				t.Fatalf("close of solo, a namespace of one owner: %v", err)
			}
			closed, err = st.ClosedStatements(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(closed) != 1 || closed[0].Publisher != "solo" || closed[0].Reference == "" {
				t.Fatalf("closed statements after closing solo: %+v, want solo's alone, pushed", closed)
			}
		})
	}
}
