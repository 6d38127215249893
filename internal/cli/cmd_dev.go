package cli

import (
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/spf13/cobra"
)

func newDevCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "dev", Short: "Local services for a first try"})
	var o serverapi.DevOptions
	up := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded registry and index on localhost until interrupted",
		Long: `Run a CNCF distribution registry and an index service in this process, on plain
HTTP, for trying mkt without any infrastructure. The registry notifies the index,
which ingests every extension pushed (tenant "dev", public). Use --plain-http.
Blobs live in memory unless --root names a directory.

The index verifies with a dev policy (enforce mode): a version must be signed
by the dev key, which is made once in --dev-dir and reused. Sign with it to see
the "signed" and "policy passed" badges; an unsigned version shows neither.

The addresses are printed (with --format json, as one document) once both
listen; then mkt runs until interrupted.

With --config FILE the index runs that index config (index.yaml) instead of
the dev one: its stages, sources, publishers, store and policies, as
"mkt index serve" would, listening on --index-listen. Its sources must name
the embedded registry (--listen, with plainHTTP: true); no dev key is made.
scripts/demo.sh runs the three phases of docs/phases.md this way.

mkt runs this command as mkt-server, the companion program that holds the
index service and the registry (installed beside mkt).`,
		Example: `  mkt dev up --listen 127.0.0.1:5000 --index-listen 127.0.0.1:8080 &
  mkt push --plain-http 127.0.0.1:5000/acme/salesforce examples/salesforce-connector
  COSIGN_PASSWORD= mkt sign --plain-http 127.0.0.1:5000/acme/salesforce:1.4.2 --key ~/.config/mkt/dev/dev.key
  mkt search salesforce --index http://127.0.0.1:8080`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				return srv.DevUp(cmd.Context(), env, o)
			})
		}),
	}
	f := up.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:5000", "registry address (port 0 picks a free one)")
	f.StringVar(&o.IndexListen, "index-listen", "127.0.0.1:8080", "index address (port 0 picks a free one)")
	f.BoolVar(&o.NoIndex, "no-index", false, "run the registry alone")
	f.StringVar(&o.RootDir, "root", "", "store blobs under this directory instead of memory")
	f.StringVar(&o.AddrFile, "addr-file", "", "write the registry's host:port to this file once it listens")
	f.StringVar(&o.IndexAddrFile, "index-addr-file", "", "write the index URL to this file once it listens")
	f.StringVar(&o.Config, "config", "", "run the index with this index config (stages, sources, publishers) instead of the dev one")
	f.StringVar(&o.DevDir, "dev-dir", defaultDevDir(), "where the dev key pair and policy live (the key is made once and reused)")
	cmd.AddCommand(up)
	return cmd
}

// defaultDevDir is testenv/dev.DefaultDir, which mkt does not link.
func defaultDevDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mkt", "dev")
	}
	return filepath.Join(os.TempDir(), "mkt-dev")
}
