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
	var listen, indexListen, root, addrFile, indexAddrFile, devDir string
	var noIndex bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded registry and index on localhost until interrupted",
		Long: `Run a CNCF distribution registry and an index service in this process, on plain
HTTP, for trying mkt without any infrastructure. The registry notifies the index,
which ingests every extension pushed (tenant "dev", public). Use --plain-http.
Blobs live in memory unless --root names a directory.

The index verifies with a dev policy (enforce mode): a version must be signed
by the dev key, which is made once in --dev-dir and reused. Sign with it to see
the "signed" and "policy passed" badges; an unsigned version shows neither.`,
		Example: `  mkt dev up --listen 127.0.0.1:5000 --index-listen 127.0.0.1:8080 &
  mkt push --plain-http 127.0.0.1:5000/acme/salesforce examples/salesforce-connector
  COSIGN_PASSWORD= mkt sign --plain-http 127.0.0.1:5000/acme/salesforce:1.4.2 --key ~/.config/mkt/dev/dev.key
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
			var trust *index.DevTrust
			if idxLn != nil {
				if trust, err = index.WriteDevTrust(devDir); err != nil {
					return err
				}
				out["key"], out["publicKey"], out["policy"] = trust.Key, trust.PublicKey, trust.Policy
				dir, err := os.MkdirTemp("", "mkt-dev-index-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				level := slog.LevelWarn
				if g.verbose {
					level = slog.LevelDebug
				}
				conf := index.DevConfig(reg.Host, dir, hex.EncodeToString(secret))
				conf.Policy, conf.PublicURL = trust.Policy, "http://"+idxLn.Addr().String()
				s, err := index.NewServer(ctx, conf, g.remote(), slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})))
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
					fmt.Fprintf(g.stdout, "dev signing key: %s (public key %s, no password)\n", trust.Key, trust.PublicKey)
					fmt.Fprintf(g.stdout, "dev policy (enforce: a signature by the dev key is required): %s\n", trust.Policy)
					fmt.Fprintf(g.stdout, "sign what you push with: COSIGN_PASSWORD= mkt sign --plain-http %s/REPOSITORY:VERSION --key %s\n", reg.Host, trust.Key)
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
	f.StringVar(&devDir, "dev-dir", defaultDevDir(), "where the dev key pair and policy live (the key is made once and reused)")
	dev.AddCommand(up)
	return dev
}

// defaultDevDir is where `mkt dev up` keeps its dev key: the user's
// configuration directory, so that it survives reboots like the artifacts
// signed with it may (--root).
func defaultDevDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mkt", "dev")
	}
	return filepath.Join(os.TempDir(), "mkt-dev")
}
