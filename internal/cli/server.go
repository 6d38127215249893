package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/spf13/cobra"
)

// The server commands (index serve, index token …, dev up) link the index
// service and the embedded registry: SQLite, pgx, River, goose, Prometheus,
// html/template, CNCF distribution with its tracing. mkt does not link them,
// so that it starts as fast as oras; it runs mkt-server, the companion
// program with the same command tree and these commands in process, with the
// same arguments, the way git runs git-<command>. On Unix mkt replaces
// itself with mkt-server (execve): same process ID, stdin, stdout, stderr,
// signals (SIGHUP reloads index serve's policy) and exit status.

// serverName is the companion program's name; serverEnv names it elsewhere.
const (
	serverName = "mkt-server"
	serverEnv  = "MKT_SERVER"
	// delegatedEnv is set for mkt-server: a program that gets it and still
	// lacks the server commands is not mkt-server (MKT_SERVER=mkt), and
	// running it again would never end.
	delegatedEnv = "MKT_SERVER_RUNNING"
	modulePath   = "github.com/connectsoft/marketplace"
)

// server runs a server command: in process when this program has them
// (mkt-server), else by running mkt-server with this run's arguments.
func (g *globals) server(cmd *cobra.Command, f func(serverapi.Commands, serverapi.Env) (serverapi.Result, error)) (result, error) {
	if g.srv == nil {
		return nil, g.delegate(cmd)
	}
	env := serverapi.Env{
		Verbose: g.verbose,
		Stderr:  g.stderr,
		Remote:  g.remote(),
		Emit:    func(r serverapi.Result) error { return g.out.emit(serverResult{r}) },
	}
	res, err := f(g.srv, env)
	var ue serverapi.UsageError
	if errors.As(err, &ue) {
		err = usageError{ue.Err}
	}
	if res == nil {
		return nil, err
	}
	return serverResult{res}, err
}

// serverResult is a server command's result as the printer takes it.
type serverResult struct{ serverapi.Result }

func (r serverResult) printText(p *printer) { r.PrintText(p.stdout, p.stderr) }

func (r serverResult) MarshalJSON() ([]byte, error) { return marshal(r.Result) }

// exitStatus is how mkt-server ended, when it ran as a child process: it
// printed its result or error itself, mkt prints nothing more.
type exitStatus int

func (e exitStatus) Error() string {
	return fmt.Sprintf("%s exited with status %d", serverName, int(e))
}

// notInstalledError says that mkt-server was not found, and where mkt looked.
type notInstalledError struct {
	command string
	looked  []string
}

func (e *notInstalledError) Error() string {
	return fmt.Sprintf("%s needs %s, the companion program with the index service and the embedded registry, and it is not installed (looked for %s)",
		e.command, serverName, strings.Join(e.looked, ", "))
}

// installHint says exactly how to install mkt-server.
func installHint() string {
	v := versionString()
	if !strings.HasPrefix(v, "v") {
		v = "latest"
	}
	return fmt.Sprintf("install it beside mkt: `go install %s/cmd/%s@%s` (next to `go install %s/cmd/mkt@%s`), or `make build` in a checkout (bin/mkt and bin/%s); %s=PATH names it anywhere else",
		modulePath, serverName, v, modulePath, v, serverName, serverEnv)
}

// findServer finds mkt-server: $MKT_SERVER if set, else beside this
// program's executable, else on PATH.
func findServer(command string) (string, error) {
	exe := serverName
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	if p := os.Getenv(serverEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", &notInstalledError{command, []string{serverEnv + "=" + p}}
	}
	var looked []string
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), exe)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	if p, err := exec.LookPath(exe); err == nil {
		return p, nil
	}
	looked = append(looked, exe+" on PATH")
	return "", &notInstalledError{command, looked}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0)
}

// delegate runs this run's arguments as mkt-server. From Main on Unix mkt
// becomes mkt-server (execve) and delegate returns only if that failed;
// otherwise (tests, other systems) mkt-server runs as a child with the same
// stdin, stdout and stderr, SIGINT, SIGTERM and SIGHUP are passed on to it,
// the end of ctx interrupts it, and its exit status is mkt's.
func (g *globals) delegate(cmd *cobra.Command) error {
	if os.Getenv(delegatedEnv) != "" {
		return fmt.Errorf("%s was run as %s (%s=%s) but lacks the server commands: %s must name mkt-server, not mkt", os.Args[0], serverName, delegatedEnv, os.Getenv(delegatedEnv), serverEnv)
	}
	path, err := findServer(cmd.CommandPath())
	if err != nil {
		return err
	}
	env := append(os.Environ(), delegatedEnv+"="+path)
	if g.inPlace {
		if err := execInPlace(path, g.args, env); !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("run %s: %w", path, err)
		}
	}
	c := exec.Command(path, g.args...)
	c.Stdin, c.Stdout, c.Stderr, c.Env = g.stdin, g.stdout, g.stderr, env
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		return fmt.Errorf("run %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	ctxDone := cmd.Context().Done()
	for {
		select {
		case s := <-sigs:
			c.Process.Signal(s)
		case <-ctxDone:
			ctxDone = nil
			c.Process.Signal(os.Interrupt)
		case err := <-done:
			var ee *exec.ExitError
			switch {
			case err == nil:
				return exitStatus(exitOK)
			case errors.As(err, &ee) && ee.ExitCode() >= 0:
				return exitStatus(ee.ExitCode())
			default: // killed by a signal, or not waited for
				return fmt.Errorf("%s: %w", serverName, err)
			}
		}
	}
}
