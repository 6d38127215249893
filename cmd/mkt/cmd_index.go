package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/spf13/cobra"
)

func newIndexCmd(g *globals) *cobra.Command {
	idx := &cobra.Command{Use: "index", Short: "Run and administer the index service"}
	var config string
	serve := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve the index: registry webhook, search API",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := index.LoadConfig(config)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			s, err := index.NewServer(cmd.Context(), c, g.remote(), log)
			if err != nil {
				return err
			}
			// SIGHUP reloads the policy file and re-derives every decision.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return s.ListenAndServeWatchingPolicy(cmd.Context(), hup)
		},
	}
	serve.Flags().StringVar(&config, "config", "index.yaml", "index configuration file")

	var tenant, roles string
	token := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	create := &cobra.Command{
		Use:   "create --config FILE --tenant T --roles R[,R]",
		Short: "Create an API token; it is printed once, only its hash is stored",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant == "" || roles == "" {
				return usagef("token create needs --tenant and --roles")
			}
			c, err := index.LoadConfig(config)
			if err != nil {
				return err
			}
			tok, rec, err := index.NewToken(tenant, strings.Split(roles, ","))
			if err != nil {
				return usageError{err}
			}
			st, err := index.OpenStore(cmd.Context(), c)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.PutToken(cmd.Context(), rec); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Token for tenant %s (%s); it is shown once:\n", tenant, roles)
			fmt.Fprintln(g.stdout, tok)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if indexURL == "" {
				return usagef("search needs --index URL")
			}
			q := url.Values{}
			if len(args) == 1 {
				q.Set("q", args[0])
			}
			if kind != "" {
				q.Set("kind", kind)
			}
			if factory != "" {
				q.Set("factory", factory)
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, strings.TrimSuffix(indexURL, "/")+"/api/v1/extensions?"+q.Encode(), nil)
			if err != nil {
				return usageError{err}
			}
			if tok := os.Getenv("MKT_INDEX_TOKEN"); tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("search %s: %w", indexURL, err)
			}
			defer resp.Body.Close()
			var res struct {
				Items []struct {
					Name, Kind, Title, LatestVersion, License string
					Signed, Reviewed                          bool
				} `json:"items"`
				Total int    `json:"total"`
				Error string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
				return fmt.Errorf("search %s: %w", indexURL, err)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("search %s: %s (%d)", indexURL, res.Error, resp.StatusCode)
			}
			if g.json() {
				return writeJSON(g.stdout, res)
			}
			for _, it := range res.Items {
				badges := ""
				if it.Signed {
					badges += " signed"
				}
				if it.Reviewed {
					badges += " reviewed"
				}
				fmt.Fprintf(g.stdout, "%-32s %-10s %-10s %-12s%s\n", artifact.Printable(it.Name), artifact.Printable(it.LatestVersion), artifact.Printable(it.Kind), artifact.Printable(it.License), badges)
			}
			fmt.Fprintf(g.stderr, "%d extensions\n", res.Total)
			return nil
		},
	}
	cmd.Flags().StringVar(&indexURL, "index", "", "index service URL")
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind")
	cmd.Flags().StringVar(&factory, "factory", "", "only extensions compatible with this Factory version")
	return cmd
}
