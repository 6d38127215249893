package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/spf13/cobra"
)

func newDevCmd(g *globals) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Local services for a first try"}
	var listen, indexListen, root, addrFile, indexAddrFile string
	var noIndex bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded registry and index on localhost until interrupted",
		Long: `Run a CNCF distribution registry and an index service in this process, on plain
HTTP, for trying mkt without any infrastructure. The registry notifies the index,
which ingests every extension pushed (tenant "dev", public). Use --plain-http.
Blobs live in memory unless --root names a directory.`,
		Example: `  mkt dev up --listen 127.0.0.1:5000 --index-listen 127.0.0.1:8080 &
  mkt push --plain-http 127.0.0.1:5000/acme/salesforce examples/salesforce-connector
  mkt search salesforce --index http://127.0.0.1:8080`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := testenv.DistributionOptions{Addr: listen, RootDir: root, Log: g.verbose}
			var idxLn net.Listener
			secret := make([]byte, 16)
			rand.Read(secret)
			if !noIndex {
				var err error
				if idxLn, err = net.Listen("tcp", indexListen); err != nil {
					return fmt.Errorf("index listen %s: %w", indexListen, err)
				}
				opts.NotifyURL = "http://" + idxLn.Addr().String() + "/api/v1/events/registry"
				opts.NotifyHeaders = http.Header{"Authorization": {"Bearer " + hex.EncodeToString(secret)}}
			}
			reg, err := testenv.StartDistribution(opts)
			if err != nil {
				return err
			}
			defer reg.Close()
			out := map[string]string{"registry": reg.Host}
			var serveErr chan error
			if idxLn != nil {
				dir, err := os.MkdirTemp("", "mkt-dev-index-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				level := slog.LevelWarn
				if g.verbose {
					level = slog.LevelDebug
				}
				s, err := index.NewServer(ctx, index.DevConfig(reg.Host, dir, hex.EncodeToString(secret)), g.remote(), slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})))
				if err != nil {
					return err
				}
				serveErr = make(chan error, 1)
				go func() { serveErr <- s.Serve(ctx, idxLn) }()
				out["index"] = "http://" + idxLn.Addr().String()
			}
			for file, v := range map[string]string{addrFile: reg.Host, indexAddrFile: out["index"]} {
				if file == "" || v == "" {
					continue
				}
				if err := os.WriteFile(file+".tmp", []byte(v+"\n"), 0o644); err != nil {
					return err
				}
				if err := os.Rename(file+".tmp", filepath.Clean(file)); err != nil {
					return err
				}
			}
			if g.json() {
				writeJSON(g.stdout, out)
			} else {
				fmt.Fprintf(g.stdout, "registry listening on http://%s (use --plain-http)\n", reg.Host)
				if out["index"] != "" {
					fmt.Fprintf(g.stdout, "index listening on %s\n", out["index"])
				}
			}
			<-ctx.Done()
			fmt.Fprintln(g.stderr, "shutting down")
			if serveErr != nil {
				return <-serveErr
			}
			return nil
		},
	}
	f := up.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:5000", "registry address (port 0 picks a free one)")
	f.StringVar(&indexListen, "index-listen", "127.0.0.1:8080", "index address (port 0 picks a free one)")
	f.BoolVar(&noIndex, "no-index", false, "run the registry alone")
	f.StringVar(&root, "root", "", "store blobs under this directory instead of memory")
	f.StringVar(&addrFile, "addr-file", "", "write the registry's host:port to this file once it listens")
	f.StringVar(&indexAddrFile, "index-addr-file", "", "write the index URL to this file once it listens")
	dev.AddCommand(up)
	return dev
}
