// Package servercmd implements mkt's server commands in process: index
// serve, index token create|list|revoke and dev up. It links the index
// service (SQL stores, River, Prometheus, templates) and the embedded CNCF
// distribution registry, so only mkt-server imports it; mkt executes
// mkt-server for these commands (internal/cli).
package servercmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/resolve/snapshot"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/dev"
)

// Commands is serverapi.Commands in process.
type Commands struct{}

var _ serverapi.Commands = Commands{}

// IndexServe serves the index until ctx ends; SIGHUP reloads the policy.
func (Commands) IndexServe(ctx context.Context, env serverapi.Env, config string) (serverapi.Result, error) {
	c, err := index.LoadConfig(config)
	if err != nil {
		return nil, err
	}
	level := slog.LevelInfo
	if env.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	s, err := index.NewServer(ctx, c, env.Remote, log)
	if err != nil {
		return nil, err
	}
	// SIGHUP reloads the policy file and re-derives every decision.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := s.ListenAndServeWatchingPolicy(ctx, hup); err != nil {
		return nil, err
	}
	return &servedResult{Config: config, Listen: c.Listen}, nil
}

// TokenCreate creates a token in the config's store.
func (Commands) TokenCreate(ctx context.Context, _ serverapi.Env, config, tenant, roles, expires string) (serverapi.Result, error) {
	var until time.Time
	if expires != "" {
		var err error
		if until, err = index.ParseExpiry(expires, time.Now()); err != nil {
			return nil, serverapi.UsageError{Err: err}
		}
	}
	if _, _, err := index.NewToken(tenant, strings.Split(roles, ",")); err != nil {
		return nil, serverapi.UsageError{Err: err} // an unknown role, before the store is opened
	}
	st, err := index.OpenConfigStore(ctx, config)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	created, err := index.CreateToken(ctx, st, tenant, strings.Split(roles, ","), until)
	if err != nil {
		return nil, err
	}
	return &tokenResult{created}, nil
}

// TokenList lists the tokens of the config's store.
func (Commands) TokenList(ctx context.Context, _ serverapi.Env, config, tenant string) (serverapi.Result, error) {
	st, err := index.OpenConfigStore(ctx, config)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tokens, err := index.ListTokens(ctx, st, tenant)
	if err != nil {
		return nil, err
	}
	return &tokenListResult{Items: tokens}, nil
}

// TokenRevoke revokes a token of the config's store.
func (Commands) TokenRevoke(ctx context.Context, _ serverapi.Env, config, id string) (serverapi.Result, error) {
	st, err := index.OpenConfigStore(ctx, config)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	t, err := index.RevokeToken(ctx, st, id)
	if err != nil {
		return nil, err
	}
	return &tokenRevokedResult{t}, nil
}

// DevUp runs the embedded registry and index until ctx ends, printing
// their addresses once both listen.
func (Commands) DevUp(ctx context.Context, env serverapi.Env, f serverapi.DevOptions) (serverapi.Result, error) {
	level := slog.LevelWarn
	if env.Verbose {
		level = slog.LevelDebug
	}
	o := dev.Options{
		Listen: f.Listen, IndexListen: f.IndexListen, NoIndex: f.NoIndex, RootDir: f.RootDir,
		AddrFile: f.AddrFile, IndexAddrFile: f.IndexAddrFile, DevDir: f.DevDir, Config: f.Config,
		Log:         slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level})),
		RegistryLog: env.Verbose,
		Remote:      env.Remote,
	}
	e, err := dev.Up(ctx, o)
	if err != nil {
		return nil, err
	}
	// Printed now, not when it stops: scripts and people need the
	// addresses while it runs.
	if err := env.Emit(&devResult{e}); err != nil {
		e.Wait()
		return nil, err
	}
	err = e.Wait()
	fmt.Fprintln(env.Stderr, "shutting down")
	return nil, err
}

// IndexSnapshot writes the scope's next signed snapshot from the config's
// store and pushes it.
func (Commands) IndexSnapshot(ctx context.Context, env serverapi.Env, o serverapi.SnapshotOptions) (serverapi.Result, error) {
	so := index.SnapshotOptions{Visibility: o.Visibility, Tenant: o.Tenant,
		Expiry: snapshot.Expiry{Root: o.RootExpiry, Targets: o.TargetsExpiry, Snapshot: o.SnapshotExpiry, Timestamp: o.TimestampExpiry}}
	if _, err := so.Scope(); err != nil {
		return nil, serverapi.UsageError{Err: err}
	}
	dst, tag, err := artifact.OpenTarget(o.To, o.ToLayout, env.Remote)
	if err != nil {
		return nil, serverapi.UsageError{Err: err}
	}
	if tag == "" || strings.HasPrefix(tag, "sha256:") {
		return nil, serverapi.UsageError{Err: fmt.Errorf("--to %s: give a tag to push the snapshot under (REF:TAG)", o.To)}
	}
	priv, err := signing.LoadPrivateKey(o.Key, signing.EnvPassword)
	if err != nil {
		return nil, err
	}
	if so.Signer, err = snapshot.NewSigner(priv); err != nil {
		return nil, fmt.Errorf("key %s: %w", o.Key, err)
	}
	st, err := index.OpenConfigStore(ctx, o.Config)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	w, err := index.WriteSnapshot(ctx, st, so, dst, tag)
	if err != nil {
		return nil, err
	}
	res := &snapshotResult{WrittenSnapshot: w, Reference: o.To, Digest: w.Descriptor.Digest.String()}
	if o.WriteRoot != "" {
		if err := os.WriteFile(o.WriteRoot, append(w.Root, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("write root: %w", err)
		}
		res.RootFile = o.WriteRoot
	}
	return res, nil
}

// snapshotResult is what index snapshot pushed.
type snapshotResult struct {
	*index.WrittenSnapshot
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// RootFile is where the newest root.json was written (--write-root).
	RootFile string `json:"rootFile,omitempty"`
}

func (r *snapshotResult) PrintText(stdout, stderr io.Writer) {
	fmt.Fprintf(stderr, "Snapshot %d of %s: %d versions, root version %d, timestamp expires %s\n",
		r.Version, r.Scope, r.Versions, r.RootVersion, r.Expires["timestamp"].Format(time.RFC3339))
	if r.RootFile != "" {
		fmt.Fprintf(stderr, "Root written to %s: give it to clients as --snapshot-root\n", r.RootFile)
	}
	fmt.Fprintf(stdout, "%s@%s\n", r.Reference, r.Digest)
}

// servedResult is what index serve served, once it stopped.
type servedResult struct {
	Config string `json:"config"`
	Listen string `json:"listen"`
}

func (r *servedResult) PrintText(_, _ io.Writer) {}

// tokenResult is a new API token: shown this once, only its hash is kept.
type tokenResult struct {
	*index.CreatedToken
}

func (r *tokenResult) PrintText(stdout, stderr io.Writer) {
	expiry := "no expiry"
	if !r.ExpiresAt.IsZero() {
		expiry = "expires " + r.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "Token %s for tenant %s (%s, %s); it is shown once:\n", r.ID, r.Tenant, strings.Join(r.Roles, ","), expiry)
	fmt.Fprintln(stdout, r.Secret)
}

// tokenListResult is token list's answer: records and states, no tokens.
type tokenListResult struct {
	Items []index.TokenInfo `json:"items"`
}

func (r *tokenListResult) PrintText(stdout, stderr io.Writer) {
	for _, t := range r.Items {
		printToken(stdout, t)
	}
	fmt.Fprintf(stderr, "%d tokens\n", len(r.Items))
}

func printToken(w io.Writer, t index.TokenInfo) {
	expires := "-"
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "%s  %-16s %-24s %-8s created %s  expires %s\n", t.ID, artifact.Printable(t.Tenant),
		artifact.Printable(strings.Join(t.Roles, ",")), t.State, t.CreatedAt.Format(time.RFC3339), expires)
}

// tokenRevokedResult is the revoked token's record.
type tokenRevokedResult struct {
	*index.TokenInfo
}

func (r *tokenRevokedResult) PrintText(stdout, stderr io.Writer) {
	printToken(stdout, *r.TokenInfo)
	fmt.Fprintf(stderr, "Token %s revoked at %s\n", r.ID, r.RevokedAt.Format(time.RFC3339))
}

// devResult is where dev up's services listen and the dev trust they use.
type devResult struct{ *dev.Env }

func (r *devResult) PrintText(stdout, _ io.Writer) {
	fmt.Fprintf(stdout, "registry listening on http://%s (use --plain-http)\n", r.Registry)
	if r.Index == "" {
		return
	}
	fmt.Fprintf(stdout, "index listening on %s\n", r.Index)
	if r.Config != "" {
		fmt.Fprintf(stdout, "index config (its stages, sources, publishers and policies): %s\n", r.Config)
		return
	}
	fmt.Fprintf(stdout, "dev signing key: %s (public key %s, no password)\n", r.Key, r.PublicKey)
	fmt.Fprintf(stdout, "dev policy (enforce: a signature by the dev key is required): %s\n", r.Policy)
	fmt.Fprintf(stdout, "sign what you push with: COSIGN_PASSWORD= mkt sign --plain-http %s/REPOSITORY:VERSION --key %s\n", r.Registry, r.Key)
}
