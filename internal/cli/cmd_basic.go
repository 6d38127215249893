package cli

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
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if kind == "" || o.Name == "" {
				return nil, usagef("init needs --kind and --name")
			}
			k, err := artifact.ParseKind(kind)
			if err != nil {
				return nil, usageError{err}
			}
			o.Kind = k
			path, err := artifact.InitExtension(dir, o)
			if err != nil {
				return nil, err
			}
			return &initResult{Descriptor: path, Kind: o.Kind, Name: o.Name, dir: dir}, nil
		}),
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
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if passwordStdin {
				if password != "" {
					return nil, usagef("--password and --password-stdin are exclusive")
				}
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && err != io.EOF {
					return nil, fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if user == "" {
				return nil, usagef("login needs --username")
			}
			if password == "" {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return nil, usagef("no password: use --password-stdin or a terminal")
				}
				fmt.Fprint(g.stderr, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(g.stderr)
				if err != nil {
					return nil, fmt.Errorf("read the password from the terminal: %w", err)
				}
				password = string(b)
			}
			if err := remote.Login(cmd.Context(), args[0], auth.Credential{Username: user, Password: password}, g.remote()); err != nil {
				return nil, err
			}
			return &credentialsResult{Registry: args[0], Status: statusLoggedIn}, nil
		}),
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
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if err := remote.Logout(cmd.Context(), args[0], g.remote()); err != nil {
				return nil, err
			}
			return &credentialsResult{Registry: args[0], Status: statusLoggedOut}, nil
		}),
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the mkt version",
		Args:  exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			return &versionResult{Version: versionString()}, nil
		}),
	}
}

// initResult is what init wrote.
type initResult struct {
	Descriptor string        `json:"descriptor"`
	Kind       artifact.Kind `json:"kind"`
	Name       string        `json:"name"`
	dir        string
}

func (r *initResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Wrote %s; edit it, then `mkt push REGISTRY/%s %s`\n", r.Descriptor, r.Name, r.dir)
	fmt.Fprintln(p.stdout, r.Descriptor)
}

// The statuses of credentialsResult.
const (
	statusLoggedIn  = "logged in"
	statusLoggedOut = "logged out"
)

// credentialsResult is what login and logout did to a registry's
// credentials.
type credentialsResult struct {
	Registry string `json:"registry"`
	Status   string `json:"status"`
}

func (r *credentialsResult) printText(p *printer) {
	if r.Status == statusLoggedIn {
		fmt.Fprintf(p.stderr, "Login succeeded for %s\n", r.Registry)
		return
	}
	fmt.Fprintf(p.stderr, "Removed credentials for %s\n", r.Registry)
}

// versionResult is mkt's version.
type versionResult struct {
	Version string `json:"version"`
}

func (r *versionResult) printText(p *printer) { fmt.Fprintln(p.stdout, r.Version) }
