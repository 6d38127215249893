package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/spf13/cobra"
)

// errDenied makes a policy denial exit 1 after its report.
var errDenied = errors.New("denied by policy")

// policyFlags are the flags of the commands that consume extensions.
type policyFlags struct {
	policyFile string
	factory    string
	registry   string
	index      string
	// snapshot, snapshotRoot, ociLayout and snapshotCache choose a signed
	// snapshot as the source instead (DESIGN §6.5).
	snapshot, snapshotRoot, snapshotCache string
	ociLayout                             bool
}

// load reads the policy file; a controlList in it gets a guard that
// remembers the newest list on disk (control.DefaultDir), so that a later
// run refuses a rolled-back list and can use the last one while the
// registry is unreachable, within maxAge.
func (f *policyFlags) load(ctx context.Context, g *globals) (*policy.Policy, error) {
	if f.policyFile == "" {
		return nil, nil
	}
	p, err := policy.Load(ctx, f.policyFile)
	if err != nil {
		return nil, err
	}
	if _, ok := p.ControlList(); ok {
		dir, err := control.DefaultDir()
		if err != nil {
			return nil, err
		}
		p.AttachControl(control.Options{Remote: g.remote(), State: control.DiskState{Dir: dir}})
	}
	return p, nil
}

func (f *policyFlags) options(ctx context.Context, g *globals) (marketplace.Options, error) {
	o := marketplace.Options{Registry: f.registry, Remote: g.remote(), FactoryVersion: f.factory}
	sources := 0
	for _, s := range []string{f.registry, f.index, f.snapshot} {
		if s != "" {
			sources++
		}
	}
	switch {
	case sources > 1:
		return o, usagef("give one of --registry, --index and --snapshot")
	case f.snapshot == "" && (f.snapshotRoot != "" || f.ociLayout):
		return o, usagef("--snapshot-root and --oci-layout go with --snapshot REF")
	case f.snapshot != "":
		if f.snapshotRoot == "" {
			return o, usagef("--snapshot needs --snapshot-root root.json: the root the snapshot must be signed under")
		}
		root, err := os.ReadFile(f.snapshotRoot)
		if err != nil {
			return o, fmt.Errorf("--snapshot-root: %w", err)
		}
		so := marketplace.SnapshotOptions{Ref: f.snapshot, OCILayout: f.ociLayout, Root: root, CacheDir: f.snapshotCache}
		if o, err = marketplace.OpenSnapshot(ctx, so, o); err != nil {
			return o, err
		}
	case f.index != "":
		o.Index = &client.Client{URL: f.index, Token: os.Getenv("MKT_INDEX_TOKEN")}
	case f.registry == "":
		return o, usagef("give --registry HOST[/PREFIX] (acme/crm is looked up at HOST/PREFIX/acme/crm), --index URL or --snapshot REF")
	}
	p, err := f.load(ctx, g)
	if err != nil {
		return o, err
	}
	o.Policy = p
	return o, nil
}

func requirements(args []string) ([]resolve.Requirement, error) {
	var reqs []resolve.Requirement
	for _, a := range args {
		r, err := resolve.ParseRequirement(a)
		if err != nil {
			return nil, usageError{err}
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

// decidePolicy evaluates the policy on ref. It returns the decision, and
// with it an error when the policy denies; in audit mode it warns on stderr
// what it would deny.
func decidePolicy(ctx context.Context, g *globals, ref string, f *policyFlags) (*policy.Decision, error) {
	p, err := f.load(ctx, g)
	if err != nil {
		return nil, err
	}
	d, err := marketplace.Verify(ctx, ref, p, f.factory, g.remote())
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return d, fmt.Errorf("%s: %w", ref, errDenied)
	}
	if !d.Passed {
		fmt.Fprintf(g.stderr, "warning: policy %s is in audit mode; it would deny %s: %s\n", f.policyFile, ref, strings.Join(d.Failed(), "; "))
	}
	return d, nil
}

// verifyPolicy is decidePolicy before a pull: the decision's report goes
// to stderr when it denies, and the digest decided on is returned, so the
// caller acts on exactly it.
func verifyPolicy(ctx context.Context, g *globals, ref string, f *policyFlags) (string, error) {
	d, err := decidePolicy(ctx, g, ref, f)
	if err != nil {
		if d != nil {
			fmt.Fprint(g.stderr, printableLines(d.Text()))
		}
		return "", err
	}
	return d.Digest, nil
}

// policyVerification is the verdict of verify: of the --policy file, or
// of the key-only policy of --key and --require.
type policyVerification struct{ *policy.Decision }

func (r *policyVerification) printText(p *printer) {
	fmt.Fprint(p.stdout, printableLines(r.Text()))
	if p.verbose && r.Evidence != nil {
		fmt.Fprintf(p.stderr, "%d registry requests for the evidence\n", r.Evidence.Requests)
	}
}

func newResolveCmd(g *globals) *cobra.Command {
	var f policyFlags
	var explain bool
	cmd := &cobra.Command{
		Use:   "resolve NAME[@CONSTRAINT]... --factory-version V (--registry HOST[/PREFIX] | --index URL | --snapshot REF --snapshot-root FILE) [--policy FILE] [--explain]",
		Short: "Choose versions for extensions and their dependencies",
		Long: `For every name, and every dependency reachable from them, choose the highest
version that satisfies the constraints, the Factory version and the policy.
--explain says why each newer version was passed over.

With --index URL the index chooses and nothing it says is trusted: every
chosen digest is fetched from the registry and must be the name and version
the index named, satisfy the constraints, lie in a repository the policy has
a rule for (and in its publisher's repositories, when the index names them)
and pass the policy (a yanked version is never taken as pinned). A refused
version is excluded and the index asked again; a warning on stderr says why.

With --snapshot REF --snapshot-root root.json a signed snapshot (mkt index
snapshot) lists the versions instead, verified with TUF against the root:
a snapshot older than one this client trusted (--snapshot-cache), expired,
or altered is refused. Each chosen version is fetched by the digest the
snapshot names and judged by the policy. With --oci-layout, REF is an OCI
layout PATH[:TAG] that holds the extensions too (mkt copy --to-oci-layout):
nothing is read from the network.`,
		Example: `  mkt resolve acme/crm@^1.2 --factory-version 2.4.0 --registry registry.example.com --policy policy.yaml --explain`,
		Args:    minArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			reqs, err := requirements(args)
			if err != nil {
				return nil, err
			}
			o, err := f.options(cmd.Context(), g)
			if err != nil {
				return nil, err
			}
			res, err := marketplace.Resolve(cmd.Context(), reqs, o)
			if err != nil {
				return nil, err
			}
			return &resolveResult{Resolution: res, explain: explain}, nil
		}),
	}
	f.bind(cmd, false)
	cmd.Flags().BoolVar(&explain, "explain", false, "say why newer versions were passed over")
	return cmd
}

func newInstallCmd(g *globals) *cobra.Command {
	var f policyFlags
	var o marketplace.Options
	var explain, noReport bool
	cmd := &cobra.Command{
		Use:   "install NAME[@CONSTRAINT]... --factory-version V --policy FILE -o DIR [--lockfile F] [--locked] [--explain] [--no-usage-report]",
		Short: "Resolve, verify and unpack extensions into DIR/<publisher>/<name>/",
		Long: `Resolve the names and their dependencies, verify every chosen version against the
policy, unpack each into DIR/<publisher>/<name>/ and write the lockfile (name,
version, reference, digest). All or nothing: if one extension fails, DIR keeps
what it had and no lockfile is written. --locked installs exactly the lockfile's
digests, verifies them again, and never rewrites the lockfile.

With --index URL the index chooses and the client checks each choice as
resolve --index does: the artifact fetched by digest must be the name and
version asked for, within the constraints, in a repository the policy has a
rule for, and allowed by the policy. A yanked version is installed only when
you pinned it (--locked); one the index chose is refused. Each refused
version is excluded and the index asked for the next candidate; stderr says
why each was passed over (--explain: every passed-over version).

With --index URL and a token (MKT_INDEX_TOKEN), the install is reported to
the index as usage, one install event per extension for the token's tenant
(--no-usage-report: none). A report the index refuses or cannot take is a
warning on stderr; the install stands.

With --snapshot REF --snapshot-root root.json a signed snapshot (mkt index
snapshot) lists the versions instead, verified with TUF against the root:
a snapshot older than one this client trusted (--snapshot-cache), expired,
or altered is refused. Each chosen version is fetched by the digest the
snapshot names and judged by the policy. With --oci-layout, REF is an OCI
layout PATH[:TAG] that holds the extensions too (mkt copy --to-oci-layout):
nothing is read from the network.`,
		Example: `  mkt install acme/crm@^1.2 --factory-version 2.4.0 --policy policy.yaml --registry registry.example.com -o ./extensions
  mkt install --locked --factory-version 2.4.0 --policy policy.yaml --registry registry.example.com -o ./extensions
  mkt install acme/crm --factory-version 2.4.0 --policy policy.yaml --snapshot ./airgap:snapshot --oci-layout --snapshot-root root.json -o ./extensions`,
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if f.policyFile == "" {
				return nil, usagef("install needs --policy")
			}
			if o.Dir == "" {
				return nil, usagef("install needs -o DIR")
			}
			if len(args) == 0 && !o.Locked {
				return nil, usagef("name at least one extension, or use --locked")
			}
			reqs, err := requirements(args)
			if err != nil {
				return nil, err
			}
			base, err := f.options(cmd.Context(), g)
			if err != nil {
				return nil, err
			}
			// The shared options, with this command's own on top.
			base.Dir, base.Lockfile, base.Locked, base.Concurrency = o.Dir, o.Lockfile, o.Locked, o.Concurrency
			base.ReportInstalls = base.Index != nil && base.Index.Token != "" && !noReport
			base.UsageSource = "urn:connectsoft:marketplace:mkt"
			res, err := marketplace.Install(cmd.Context(), reqs, base)
			if err != nil {
				return nil, err
			}
			return &installResult{Installed: res, dir: o.Dir, locked: o.Locked, explain: explain}, nil
		}),
	}
	f.bind(cmd, true)
	fl := cmd.Flags()
	fl.StringVarP(&o.Dir, "output", "o", "", "directory to install into")
	fl.StringVar(&o.Lockfile, "lockfile", "extensions.lock", "lockfile to write (or read with --locked)")
	fl.BoolVar(&o.Locked, "locked", false, "install exactly the lockfile's digests")
	fl.IntVar(&o.Concurrency, "concurrency", 4, "parallel downloads")
	fl.BoolVar(&explain, "explain", false, "say on stderr why newer versions were passed over")
	fl.BoolVar(&noReport, "no-usage-report", false, "with --index, do not report the install to the index as usage")
	return cmd
}

// resolveResult is what resolve chose: {"selected":[…]}, as the index's
// resolve API answers.
type resolveResult struct {
	*resolve.Resolution
	explain bool
}

func (r *resolveResult) printText(p *printer) {
	for _, s := range r.Selected {
		fmt.Fprintf(p.stdout, "%-32s %-12s %s\n", s.Name, s.Version, s.Reference)
		if r.explain {
			fmt.Fprintf(p.stdout, "    required by %s\n", strings.Join(s.RequiredBy, ", "))
			for _, o := range s.PassedOver {
				fmt.Fprintf(p.stdout, "    passed over %s: %s\n", o.Version, passedOverReasons(o))
			}
		}
	}
	if !r.explain {
		warnRefusedLocally(p, r.Selected)
	}
}

// installResult is what install put where: extensions, lock, lockfile.
type installResult struct {
	*marketplace.Installed
	dir             string
	locked, explain bool
}

func (r *installResult) printText(p *printer) {
	for _, e := range r.Lock.Extensions {
		fmt.Fprintf(p.stdout, "%-32s %-12s %s\n", e.Name, e.Version, e.Digest)
	}
	if r.explain {
		for _, s := range r.Extensions {
			for _, o := range s.PassedOver {
				fmt.Fprintf(p.stderr, "%s: passed over %s: %s\n", s.Name, o.Version, passedOverReasons(o))
			}
		}
	} else {
		warnRefusedLocally(p, r.Extensions)
	}
	if u := r.Usage; u != nil {
		switch {
		case u.Error != "":
			fmt.Fprintf(p.stderr, "warning: the install was not reported to the index as usage: %s\n", artifact.Printable(u.Error))
		case u.Refused > 0:
			for _, e := range u.Events {
				if e.Error != nil {
					fmt.Fprintf(p.stderr, "warning: the index refused the usage report: %s\n", artifact.Printable(e.Error.Message))
				}
			}
		}
	}
	if r.locked {
		fmt.Fprintf(p.stderr, "Installed %d extensions from %s into %s\n", len(r.Lock.Extensions), r.Lockfile, r.dir)
	} else {
		fmt.Fprintf(p.stderr, "Installed %d extensions into %s; wrote %s\n", len(r.Lock.Extensions), r.dir, r.Lockfile)
	}
}

// passedOverReasons joins a passed-over version's reasons, saying when it
// was the client, not the index, that refused it.
func passedOverReasons(p resolve.PassedOver) string {
	why := strings.Join(p.Reasons, "; ")
	if p.RefusedLocally {
		why = "offered by the index, refused here: " + why
	}
	return why
}

// warnRefusedLocally tells the user, even without --explain, which
// versions an index offered and this client refused: what was installed or
// chosen is then not what the index chose, and the user should know why.
func warnRefusedLocally(pr *printer, sel []*resolve.Selected) {
	for _, s := range sel {
		for _, p := range s.PassedOver {
			if p.RefusedLocally {
				fmt.Fprintf(pr.stderr, "warning: %s: passed over %s: %s\n", s.Name, p.Version, passedOverReasons(p))
			}
		}
	}
}

func (f *policyFlags) bind(cmd *cobra.Command, policyRequired bool) {
	fl := cmd.Flags()
	help := "policy file deciding what may be chosen"
	if policyRequired {
		help += " (required)"
	}
	fl.StringVar(&f.policyFile, "policy", "", help)
	fl.StringVar(&f.factory, "factory-version", "", "the Factory version extensions must be compatible with")
	fl.StringVar(&f.registry, "registry", "", "HOST[/PREFIX] where publisher/name repositories live")
	fl.StringVar(&f.index, "index", "", "index service URL that resolves (MKT_INDEX_TOKEN is sent as its bearer token)")
	fl.StringVar(&f.snapshot, "snapshot", "", "signed snapshot REF (mkt index snapshot) that lists the versions instead of an index")
	fl.StringVar(&f.snapshotRoot, "snapshot-root", "", "trusted root.json the snapshot must be signed under")
	fl.BoolVar(&f.ociLayout, "oci-layout", false, "--snapshot is an OCI image layout PATH[:TAG|@DIGEST], which serves the extensions too (air-gapped)")
	fl.StringVar(&f.snapshotCache, "snapshot-cache", "", "directory keeping the snapshot metadata this client trusted (default: the user cache directory's mkt/snapshots)")
}
