package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"oras.land/oras-go/v2/registry/remote/auth"
)

func newInitCmd(g *globals) *cobra.Command {
	var o artifact.InitOptions
	var kind string
	cmd := &cobra.Command{
		Use:     "init [DIR] --kind KIND --name PUBLISHER/NAME",
		Short:   "Write a starter extension.yaml",
		Example: `  mkt init ./salesforce --kind connector --name acme/salesforce`,
		Args:    rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if kind == "" || o.Name == "" {
				return usagef("init needs --kind and --name")
			}
			k, err := artifact.ParseKind(kind)
			if err != nil {
				return usageError{err}
			}
			o.Kind = k
			path, err := artifact.InitExtension(dir, o)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"descriptor": path, "kind": string(o.Kind), "name": o.Name})
			}
			fmt.Fprintf(g.stderr, "Wrote %s; edit it, then `mkt push REGISTRY/%s %s`\n", path, o.Name, dir)
			fmt.Fprintln(g.stdout, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "Template, Agent, Module or Connector")
	f.StringVar(&o.Name, "name", "", "publisher/name")
	f.StringVar(&o.Version, "version", "", "first version (default 0.1.0)")
	f.StringVar(&o.License, "license", "", "SPDX licence expression (default Apache-2.0)")
	f.StringVar(&o.Factory, "factory", "", `Factory versions it works with (default ">=2.0.0 <3.0.0")`)
	return cmd
}

func newLoginCmd(g *globals) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:     "login REGISTRY",
		Short:   "Store credentials for a registry in the docker config",
		Example: `  mkt login registry.example.com -u alice --password-stdin < token.txt`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if passwordStdin {
				if password != "" {
					return usagef("--password and --password-stdin are exclusive")
				}
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if user == "" {
				return usagef("login needs --username")
			}
			if password == "" {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usagef("no password: use --password-stdin or a terminal")
				}
				fmt.Fprint(g.stderr, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(g.stderr)
				if err != nil {
					return err
				}
				password = string(b)
			}
			if err := remote.Login(cmd.Context(), args[0], auth.Credential{Username: user, Password: password}, g.remote()); err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"registry": args[0], "status": "logged in"})
			}
			fmt.Fprintf(g.stderr, "Login succeeded for %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "registry user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "registry password or token (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's credentials from the docker config",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := remote.Logout(cmd.Context(), args[0], g.remote()); err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"registry": args[0], "status": "logged out"})
			}
			fmt.Fprintf(g.stderr, "Removed credentials for %s\n", args[0])
			return nil
		},
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the mkt version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"version": versionString()})
			}
			fmt.Fprintln(g.stdout, versionString())
			return nil
		},
	}
}
