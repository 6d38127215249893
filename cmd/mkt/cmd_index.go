package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/client"
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
			c, err := index.LoadConfig(config)
			if err != nil {
				return nil, err
			}
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			s, err := index.NewServer(cmd.Context(), c, g.remote(), log)
			if err != nil {
				return nil, err
			}
			// SIGHUP reloads the policy file and re-derives every decision.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			if err := s.ListenAndServeWatchingPolicy(cmd.Context(), hup); err != nil {
				return nil, err
			}
			return &servedResult{Config: config, Listen: c.Listen}, nil
		}),
	}
	serve.Flags().StringVar(&config, "config", "index.yaml", "index configuration file")

	var tenant, roles string
	token := group(&cobra.Command{Use: "token", Short: "Manage API tokens"})
	create := &cobra.Command{
		Use:   "create --config FILE --tenant T --roles R[,R]",
		Short: "Create an API token; it is printed once, only its hash is stored",
		Args:  exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if tenant == "" || roles == "" {
				return nil, usagef("token create needs --tenant and --roles")
			}
			c, err := index.LoadConfig(config)
			if err != nil {
				return nil, err
			}
			tok, rec, err := index.NewToken(tenant, strings.Split(roles, ","))
			if err != nil {
				return nil, usageError{err}
			}
			st, err := index.OpenStore(cmd.Context(), c)
			if err != nil {
				return nil, err
			}
			defer st.Close()
			if err := st.PutToken(cmd.Context(), rec); err != nil {
				return nil, fmt.Errorf("store the token: %w", err)
			}
			return &tokenResult{Token: tok, Tenant: rec.Tenant, Roles: rec.Roles}, nil
		}),
	}
	create.Flags().StringVar(&config, "config", "index.yaml", "index configuration file")
	create.Flags().StringVar(&tenant, "tenant", "", "tenant the token belongs to")
	create.Flags().StringVar(&roles, "roles", "", "comma-separated roles: reader, publisher, reviewer, admin")
	token.AddCommand(create)
	idx.AddCommand(serve, token)
	return idx
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

// servedResult is what index serve served, once it stopped.
type servedResult struct {
	Config string `json:"config"`
	Listen string `json:"listen"`
}

func (r *servedResult) printText(*printer) {}

// tokenResult is a new API token: shown this once, only its hash is kept.
type tokenResult struct {
	Token  string   `json:"token"`
	Tenant string   `json:"tenant"`
	Roles  []string `json:"roles"`
}

func (r *tokenResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Token for tenant %s (%s); it is shown once:\n", r.Tenant, strings.Join(r.Roles, ","))
	fmt.Fprintln(p.stdout, r.Token)
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
