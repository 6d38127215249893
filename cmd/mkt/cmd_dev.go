package main

import (
	"fmt"
	"log/slog"

	"github.com/connectsoft/marketplace/testenv/dev"
	"github.com/spf13/cobra"
)

func newDevCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "dev", Short: "Local services for a first try"})
	var o dev.Options
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
listen; then mkt runs until interrupted.`,
		Example: `  mkt dev up --listen 127.0.0.1:5000 --index-listen 127.0.0.1:8080 &
  mkt push --plain-http 127.0.0.1:5000/acme/salesforce examples/salesforce-connector
  COSIGN_PASSWORD= mkt sign --plain-http 127.0.0.1:5000/acme/salesforce:1.4.2 --key ~/.config/mkt/dev/dev.key
  mkt search salesforce --index http://127.0.0.1:8080`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			o.Log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			o.RegistryLog = g.verbose
			o.Remote = g.remote()
			env, err := dev.Up(cmd.Context(), o)
			if err != nil {
				return nil, err
			}
			// Printed now, not when it stops: scripts and people need the
			// addresses while it runs.
			if err := g.out.emit(&devResult{env}); err != nil {
				env.Wait()
				return nil, err
			}
			err = env.Wait()
			fmt.Fprintln(g.stderr, "shutting down")
			return nil, err
		}),
	}
	f := up.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:5000", "registry address (port 0 picks a free one)")
	f.StringVar(&o.IndexListen, "index-listen", "127.0.0.1:8080", "index address (port 0 picks a free one)")
	f.BoolVar(&o.NoIndex, "no-index", false, "run the registry alone")
	f.StringVar(&o.RootDir, "root", "", "store blobs under this directory instead of memory")
	f.StringVar(&o.AddrFile, "addr-file", "", "write the registry's host:port to this file once it listens")
	f.StringVar(&o.IndexAddrFile, "index-addr-file", "", "write the index URL to this file once it listens")
	f.StringVar(&o.DevDir, "dev-dir", dev.DefaultDir(), "where the dev key pair and policy live (the key is made once and reused)")
	cmd.AddCommand(up)
	return cmd
}

// devResult is where dev up's services listen and the dev trust they use.
type devResult struct{ *dev.Env }

func (r *devResult) printText(p *printer) {
	fmt.Fprintf(p.stdout, "registry listening on http://%s (use --plain-http)\n", r.Registry)
	if r.Index == "" {
		return
	}
	fmt.Fprintf(p.stdout, "index listening on %s\n", r.Index)
	fmt.Fprintf(p.stdout, "dev signing key: %s (public key %s, no password)\n", r.Key, r.PublicKey)
	fmt.Fprintf(p.stdout, "dev policy (enforce: a signature by the dev key is required): %s\n", r.Policy)
	fmt.Fprintf(p.stdout, "sign what you push with: COSIGN_PASSWORD= mkt sign --plain-http %s/REPOSITORY:VERSION --key %s\n", r.Registry, r.Key)
}
