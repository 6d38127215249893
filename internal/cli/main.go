// Package cli is the mkt command tree, shared by mkt (cmd/mkt) and
// mkt-server (cmd/mkt-server), which differ only in the server commands:
// mkt-server runs them in process (servercmd), mkt runs mkt-server for them
// (server.go). Each command parses its flags, calls one
// library function (artifact, signing, marketplace, index, testenv/dev) and
// returns one typed result or an error; the printer (output.go) alone writes
// it, as text or as exactly one JSON document, and errors.go alone decides
// how an error reads, its code and its exit status (DESIGN §7).
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/remote"
	"github.com/spf13/cobra"
)

// version is Main's: cmd/mkt's and cmd/mkt-server's main.version, set at
// build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// globals are the flags every command takes.
type globals struct {
	plainHTTP      bool
	insecure       bool
	caFile         string
	registryConfig string
	format         string
	verbose        bool
	connectTimeout time.Duration
	timeout        time.Duration
	requestTimeout time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer

	// args are the run's arguments, which a server command passes on to
	// mkt-server as they are.
	args []string
	// srv runs the server commands in process (mkt-server); nil in mkt,
	// which runs mkt-server for them.
	srv serverapi.Commands
	// inPlace lets a server command replace this process with mkt-server
	// (Main), rather than run it as a child (tests).
	inPlace bool

	// out prints the one result (or error) of the run.
	out *printer
	// result is what the command returned, for out to print.
	result result
}

// action adapts a command to cobra: the command returns its result or an
// error and prints nothing itself; run hands both to the printer.
func (g *globals) action(f func(cmd *cobra.Command, args []string) (result, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		res, err := f(cmd, args)
		g.result = res
		return withUsage(err, cmd)
	}
}

// group makes cmd a command that only holds subcommands: run alone or with
// an unknown subcommand it is bad usage (exit 2, and an error document in
// JSON mode), not a help page printed where a script reads results.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.RunE = func(c *cobra.Command, args []string) error {
		var names []string
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if len(args) > 0 {
			return usedWrongly{usagef("unknown command %q for %q: want one of %s", args[0], c.CommandPath(), strings.Join(names, ", ")), c.CommandPath() + " COMMAND"}
		}
		return usedWrongly{usagef("%s needs a command: one of %s", c.CommandPath(), strings.Join(names, ", ")), c.CommandPath() + " COMMAND"}
	}
	return cmd
}

func (g *globals) remote() remote.Options {
	return remote.Options{
		PlainHTTP:      g.plainHTTP,
		Insecure:       g.insecure,
		CAFile:         g.caFile,
		RegistryConfig: g.registryConfig,
		UserAgent:      remote.UserAgent + "/" + versionString(),
		ConnectTimeout: g.connectTimeout,
		Timeout:        g.timeout,
		RequestTimeout: g.requestTimeout,
	}
}

func (g *globals) json() bool { return g.format == "json" }

func newRoot(g *globals) *cobra.Command {
	root := group(&cobra.Command{
		Use:   "mkt",
		Short: "Publish, verify and consume ConnectSoft Factory extensions as OCI artifacts",
		Long: `mkt packs extensions (templates, agents, modules, connectors) into OCI artifacts and
moves them between any OCI registries and OCI image layouts.

Human messages go to stderr, results to stdout. Exit status: 0 on success,
1 on failure, 2 on bad usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.format != "text" && g.format != "json" {
				return usagef("--format %q: want text or json", g.format)
			}
			g.out.json, g.out.verbose = g.json(), g.verbose
			return nil
		},
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&g.plainHTTP, "plain-http", false, "talk to registries over plain HTTP")
	pf.BoolVar(&g.insecure, "insecure", false, "skip TLS certificate verification")
	pf.StringVar(&g.caFile, "ca-file", "", "PEM file of extra CA certificates to trust")
	pf.StringVar(&g.registryConfig, "registry-config", "", "docker config.json with registry credentials (default: docker's)")
	pf.StringVar(&g.format, "format", "text", "output format: text or json")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print more about what happens")
	pf.DurationVar(&g.connectTimeout, "connect-timeout", remote.DefaultConnectTimeout, "longest wait to connect to a registry (TCP and TLS, each); negative: no limit")
	pf.DurationVar(&g.timeout, "timeout", remote.DefaultTimeout, "longest a registry may stay silent: before answering, or in the middle of a body; negative: no limit")
	pf.DurationVar(&g.requestTimeout, "request-timeout", remote.DefaultRequestTimeout, "longest a registry request other than a blob transfer may take, retries included; negative: no limit")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usedWrongly{usageError{err}, cmd.UseLine()} })
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.AddCommand(
		newInitCmd(g), newPushCmd(g), newPullCmd(g), newInspectCmd(g), newCopyCmd(g),
		newLoginCmd(g), newLogoutCmd(g), newVersionCmd(g), newDevCmd(g),
		newKeyCmd(g), newSignCmd(g), newAttestCmd(g), newVerifyCmd(g),
		newResolveCmd(g), newInstallCmd(g), newIndexCmd(g), newSearchCmd(g), newUsageCmd(g),
		newReviewCmd(g), newPromoteCmd(g), newLifecycleCmd(g, "deprecate", "deprecated"), newLifecycleCmd(g, "yank", "yanked"), newPublisherCmd(g),
		newControlCmd(g), newAuditCmd(g),
	)
	return root
}

// execute runs mkt with args and returns the exit code; srv runs the server
// commands in process, or is nil (mkt runs mkt-server for them).
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, srv serverapi.Commands, inPlace bool) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, args: args, srv: srv, inPlace: inPlace}
	// Until the flags are parsed, go by the arguments: a run that fails
	// parsing them (an unknown flag) still answers in the format asked for.
	g.out = &printer{stdout: stdout, stderr: stderr, json: jsonRequested(args)}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return g.out.finish(g.result, err)
}

// jsonRequested says whether args ask for --format json, read before (or
// without) cobra parsing them.
func jsonRequested(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--format=json":
			return true
		case a == "--format" && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// Main runs the program and exits: mkt with srv nil, mkt-server with the
// server commands in process. v is the program's main.version.
func Main(v string, srv serverapi.Commands) {
	version = v
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, srv, true)
	stop()
	os.Exit(code)
}
