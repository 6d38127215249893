// Package serverapi is what the mkt command tree (internal/cli) and its
// server commands (internal/cli/servercmd) share: the commands that link the
// index service and the embedded registry are implemented behind Commands,
// so that mkt itself links neither. mkt runs them by executing mkt-server,
// the same command tree with Commands implemented in process.
package serverapi

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
)

// Commands runs the server commands in process (mkt-server).
type Commands interface {
	IndexServe(ctx context.Context, env Env, config string) (Result, error)
	TokenCreate(ctx context.Context, env Env, config, tenant, roles, expires string) (Result, error)
	TokenList(ctx context.Context, env Env, config, tenant string) (Result, error)
	TokenRevoke(ctx context.Context, env Env, config, id string) (Result, error)
	DevUp(ctx context.Context, env Env, o DevOptions) (Result, error)
	Statements(ctx context.Context, env Env, o StatementsOptions) (Result, error)
	// ReviewCheck runs the review pipeline (package review), which links
	// gitleaks: its report package links html/template through sprig, and
	// its rule set and archive readers cost mkt's start-up several
	// milliseconds of package initialisation (docs/performance.md).
	ReviewCheck(ctx context.Context, env Env, o ReviewOptions) (Result, error)
	IndexSnapshot(ctx context.Context, env Env, o SnapshotOptions) (Result, error)
}

// StatementsOptions are index statements' flags.
type StatementsOptions struct {
	Config, Period, Publisher string
	// Close freezes, signs (Key) and pushes (To) the statements.
	Close   bool
	Key, To string
}

// ErrRejected is returned, beside the report, when the review pipeline
// finds a blocking finding: exit 1.
var ErrRejected = errors.New("rejected by the review pipeline")

// ReviewOptions are review check's flags, with what the command tree
// already built from them (the policy, the resolver, the signer).
type ReviewOptions struct {
	// Target is a directory or a reference.
	Target         string
	Stage, BlockAt string
	Policy         *policy.Policy
	OSVDir         string
	MaxFiles       int
	MaxSize        int64
	MaxFileSize    int64
	FactoryVersion string
	// Resolve resolves the dependency closure; nil when neither
	// --registry nor --index was given.
	Resolve func(ctx context.Context, reqs []resolve.Requirement) (*resolve.Resolution, error)
	// Signer and Client attest the result (--attest); nil otherwise.
	Signer    *signing.Signer
	Client    *signing.Client
	Referrers bool
}

// Env is what a server command gets of the global flags and the printer.
type Env struct {
	Verbose bool
	Stderr  io.Writer
	Remote  remote.Options
	// Emit prints a result while the command keeps running (dev up's
	// addresses): once, as the run's one JSON document in JSON mode.
	Emit func(Result) error
}

// Result is a server command's result: its JSON is the value's own (field
// tags), its text PrintText's.
type Result interface {
	// PrintText writes the result on stdout, messages about it on stderr.
	PrintText(stdout, stderr io.Writer)
}

// UsageError marks bad usage (exit 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// DevOptions are dev up's flags.
type DevOptions struct {
	Listen, IndexListen     string
	NoIndex                 bool
	RootDir                 string
	AddrFile, IndexAddrFile string
	DevDir                  string
	// Config is an index config the index runs instead of the dev one.
	Config string
}

// SnapshotOptions are index snapshot's flags.
type SnapshotOptions struct {
	Config, Key string
	// To is where the snapshot is pushed: a registry REF, or an OCI
	// layout PATH[:TAG] with ToLayout.
	To       string
	ToLayout bool
	// Visibility or Tenant name the scope.
	Visibility, Tenant string
	// Expiries of each role's metadata; zero is the default.
	RootExpiry, TargetsExpiry, SnapshotExpiry, TimestampExpiry time.Duration
	// WriteRoot, when set, is where the newest root.json is written.
	WriteRoot string
}
