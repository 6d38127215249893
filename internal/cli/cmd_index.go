package cli

import (
	"fmt"
	"os"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/spf13/cobra"
)

func newIndexCmd(g *globals) *cobra.Command {
	idx := group(&cobra.Command{Use: "index", Short: "Run and administer the index service"})
	var config string
	serve := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve the index: registry webhook, search API",
		Args:  exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.IndexServe(cmd.Context(), env, config)
			})
		}),
	}
	serve.Flags().StringVar(&config, "config", "index.yaml", "index configuration file")

	token := group(&cobra.Command{Use: "token", Short: "Manage API tokens",
		Long: "Manage API tokens directly in the index's store: the commands read the store URL of the index config (--config) and nothing else of it, so they need the database's credentials, not the webhook secret."})
	token.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	idx.AddCommand(serve, token, newImpactCmd(g), newStatementsCmd(g), newIndexSnapshotCmd(g))
	return idx
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var config, tenant, roles, expires string
	cmd := &cobra.Command{
		Use:   "create --config FILE --tenant T --roles R[,R] [--expires DURATION|DATE]",
		Short: "Create an API token; it is printed once, only its hash is stored",
		Example: `  mkt index token create --config index.yaml --tenant acme --roles reader --expires 90d
  mkt index token create --config index.yaml --tenant acme --roles publisher --expires 2027-01-31`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if tenant == "" || roles == "" {
				return nil, usagef("token create needs --tenant and --roles")
			}
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.TokenCreate(cmd.Context(), env, config, tenant, roles, expires)
			})
		}),
	}
	cmd.Flags().StringVar(&config, "config", "index.yaml", "index configuration file (only its store is read)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant the token belongs to")
	cmd.Flags().StringVar(&roles, "roles", "", "comma-separated roles: reader, publisher, reviewer, admin")
	cmd.Flags().StringVar(&expires, "expires", "", "when the token stops working: a duration (90d, 720h) or a date (2027-01-31); default never")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	var config, tenant string
	cmd := &cobra.Command{
		Use:   "list --config FILE [--tenant T]",
		Short: "List API tokens (their IDs, never the tokens), newest first",
		Args:  exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.TokenList(cmd.Context(), env, config, tenant)
			})
		}),
	}
	cmd.Flags().StringVar(&config, "config", "index.yaml", "index configuration file (only its store is read)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's tokens")
	return cmd
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "revoke ID --config FILE",
		Short: "Revoke an API token by the ID token list shows; the API refuses it from then on",
		Args:  exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.TokenRevoke(cmd.Context(), env, config, args[0])
			})
		}),
	}
	cmd.Flags().StringVar(&config, "config", "index.yaml", "index configuration file (only its store is read)")
	return cmd
}

func newIndexSnapshotCmd(g *globals) *cobra.Command {
	var o serverapi.SnapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot --config FILE --key K --to REF:TAG [--visibility public|internal | --tenant T]",
		Short: "Write the catalog of a visibility scope as a signed TUF snapshot and push it",
		Long: `Write what a scope may see (public by default; internal; or what --tenant T
sees) as TUF metadata signed with the operator's key (a cosign key file;
COSIGN_PASSWORD is its password): root, targets, snapshot and timestamp
around one target, the catalog (name, version, repository, digest, kind,
factory range and dependencies of every version the index's policy allowed).
It is pushed as one OCI artifact (artifactType ` + "`application/vnd.connectsoft.snapshot.v1`" + `)
to a registry or, with --to-oci-layout, an OCI layout.

Every snapshot of a scope takes a version above the last, recorded in the
index's store; the root is kept there too and re-signed as a new version
when it would expire before the metadata it vouches for. Clients pin a root
(--write-root writes the newest) and refuse older, expired or mixed
snapshots: mkt resolve|install --snapshot REF --snapshot-root root.json.
Re-run it before the timestamp expires (default 24h), e.g. from cron.`,
		Example: `  mkt index snapshot --config index.yaml --key operator.key --to registry.example.com/connectsoft/snapshot:public --write-root root.json
  mkt index snapshot --config index.yaml --key operator.key --to ./airgap:snapshot --to-oci-layout --tenant acme`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if o.Key == "" || o.To == "" {
				return nil, usagef("index snapshot needs --key and --to")
			}
			if o.Tenant != "" && cmd.Flags().Changed("visibility") {
				return nil, usagef("give --visibility or --tenant, not both")
			}
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.IndexSnapshot(cmd.Context(), env, o)
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "index.yaml", "index configuration file (only its store is read)")
	f.StringVar(&o.Key, "key", "", "the operator's private key (cosign key file) that signs every role")
	f.StringVar(&o.To, "to", "", "where to push: REGISTRY/REPOSITORY:TAG, or PATH:TAG with --to-oci-layout")
	f.BoolVar(&o.ToLayout, "to-oci-layout", false, "--to is an OCI image layout PATH:TAG")
	f.StringVar(&o.Visibility, "visibility", "public", "scope: public, or internal (public and internal versions)")
	f.StringVar(&o.Tenant, "tenant", "", "scope: what this tenant sees (its own versions and public ones)")
	f.DurationVar(&o.RootExpiry, "root-expiry", 0, "how long a new root is valid (default 8760h)")
	f.DurationVar(&o.TargetsExpiry, "targets-expiry", 0, "how long the targets (catalog) metadata is valid (default 168h)")
	f.DurationVar(&o.SnapshotExpiry, "snapshot-expiry", 0, "how long the snapshot metadata is valid (default 168h)")
	f.DurationVar(&o.TimestampExpiry, "timestamp-expiry", 0, "how long the timestamp is valid (default 24h)")
	f.StringVar(&o.WriteRoot, "write-root", "", "write the newest root.json here, for clients' --snapshot-root")
	return cmd
}

func newSearchCmd(g *globals) *cobra.Command {
	var indexURL, kind, factory string
	cmd := &cobra.Command{
		Use:     "search QUERY --index URL [--kind K] [--factory V]",
		Short:   "Search an index for extensions",
		Long:    "Search an index service. MKT_INDEX_TOKEN, when set, is sent as the bearer token (private extensions of its tenant).",
		Example: `  mkt search crm --index http://127.0.0.1:8080 --factory 2.4.0`,
		Args:    rangeArgs(0, 1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if indexURL == "" {
				return nil, usagef("search needs --index URL")
			}
			q := client.SearchQuery{Factory: factory}
			if len(args) == 1 {
				q.Text = args[0]
			}
			if kind != "" {
				k, err := artifact.ParseKind(kind)
				if err != nil {
					return nil, usageError{fmt.Errorf("--kind: %w", err)}
				}
				q.Kind = string(k)
			}
			c := &client.Client{URL: indexURL, Token: os.Getenv("MKT_INDEX_TOKEN")}
			page, err := c.Search(cmd.Context(), q)
			if err != nil {
				return nil, fmt.Errorf("search: %w", err)
			}
			res := searchResult{page}
			return &res, nil
		}),
	}
	cmd.Flags().StringVar(&indexURL, "index", "", "index service URL")
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind")
	cmd.Flags().StringVar(&factory, "factory", "", "only extensions compatible with this Factory version")
	return cmd
}

// searchResult is the index API's search answer as index/client reads
// it: its JSON is the API's, field for field (GET /api/v1/extensions).
type searchResult struct {
	*client.SearchPage
}

func (r *searchResult) printText(p *printer) {
	for _, it := range r.Items {
		badges := ""
		if it.Signed {
			badges += " signed"
		}
		if it.Reviewed {
			badges += " reviewed"
		}
		fmt.Fprintf(p.stdout, "%-32s %-10s %-10s %-12s%s\n", artifact.Printable(it.Name), artifact.Printable(it.Latest), artifact.Printable(it.Kind), artifact.Printable(it.License), badges)
	}
	fmt.Fprintf(p.stderr, "%d extensions\n", r.Total)
}

func newStatementsCmd(g *globals) *cobra.Command {
	var o serverapi.StatementsOptions
	cmd := &cobra.Command{
		Use:   "statements --config FILE --period YYYY-MM [--publisher P] [--close --key K --to REGISTRY/REPOSITORY]",
		Short: "Preview the revenue-share statements of a month, or close it: freeze, sign and push them",
		Long: `Statements are per publisher and calendar month (UTC): a line per extension,
tenant and pricing model with units, unit price, gross, platform and publisher
shares, from the terms in force at each event's time (docs/billing.md).
Without --close the statements are previews from the usage received so far.
--close freezes the period in the store, signs each statement's JSON as
cosign sign-blob does and pushes it as an OCI artifact of type
application/vnd.connectsoft.statement.v1+json, tagged <publisher>-<period>,
that stock cosign verify-blob and mkt verify accept. A period is closed once.`,
		Example: `  mkt index statements --config index.yaml --period 2026-11 --publisher acme
  mkt index statements --config index.yaml --period 2026-11 --close --key operator.key --to registry.example.com/statements`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if o.Period == "" {
				return nil, usagef("statements needs --period YYYY-MM")
			}
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.Statements(cmd.Context(), env, o)
			})
		}),
	}
	cmd.Flags().StringVar(&o.Config, "config", "index.yaml", "index configuration file (its store and publishers)")
	cmd.Flags().StringVar(&o.Period, "period", "", "calendar month, YYYY-MM")
	cmd.Flags().StringVar(&o.Publisher, "publisher", "", "only this publisher (default: all)")
	cmd.Flags().BoolVar(&o.Close, "close", false, "freeze, sign and push the period's statements")
	cmd.Flags().StringVar(&o.Key, "key", "", "the operator's signing key (cosign.key, COSIGN_PASSWORD, or a KMS reference), with --close")
	cmd.Flags().StringVar(&o.To, "to", "", "registry/repository the statements are pushed to, with --close")
	return cmd
}
