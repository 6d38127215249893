package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace/testenv"
	"github.com/spf13/cobra"
)

func newDevCmd(g *globals) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Local services for a first try"}
	var listen, root, addrFile string
	up := &cobra.Command{
		Use:   "up",
		Short: "Run an embedded CNCF distribution registry on localhost until interrupted",
		Long: `Run a CNCF distribution registry in this process, on plain HTTP, for trying mkt
without any infrastructure. Use it with --plain-http. Blobs live in memory unless
--root names a directory.`,
		Example: `  mkt dev up --listen 127.0.0.1:5000 &
  mkt push --plain-http 127.0.0.1:5000/acme/salesforce examples/salesforce-connector`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := testenv.StartDistribution(testenv.DistributionOptions{Addr: listen, RootDir: root, Log: g.verbose})
			if err != nil {
				return err
			}
			defer reg.Close()
			if addrFile != "" {
				tmp := addrFile + ".tmp"
				if err := os.WriteFile(tmp, []byte(reg.Host+"\n"), 0o644); err != nil {
					return err
				}
				if err := os.Rename(tmp, filepath.Clean(addrFile)); err != nil {
					return err
				}
			}
			if g.json() {
				writeJSON(g.stdout, map[string]string{"registry": reg.Host})
			} else {
				fmt.Fprintf(g.stdout, "registry listening on http://%s (use --plain-http)\n", reg.Host)
			}
			<-cmd.Context().Done()
			fmt.Fprintln(g.stderr, "shutting down")
			return nil
		},
	}
	up.Flags().StringVar(&listen, "listen", "127.0.0.1:5000", "address to listen on (port 0 picks a free one)")
	up.Flags().StringVar(&root, "root", "", "store blobs under this directory instead of memory")
	up.Flags().StringVar(&addrFile, "addr-file", "", "write the registry's host:port to this file once it listens")
	dev.AddCommand(up)
	return dev
}
