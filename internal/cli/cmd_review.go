package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
	"github.com/spf13/cobra"
)

// newReviewCmd is the review group (DESIGN §6.2): people's approvals and
// rejections here; the automated checks (review check) join it.
func newReviewCmd(g *globals) *cobra.Command {
	review := group(&cobra.Command{Use: "review", Short: "Review extensions: sign approvals and rejections for a stage"})
	review.AddCommand(newReviewCheckCmd(g), newReviewVerdictCmd(g, "approve", "approved"), newReviewVerdictCmd(g, "reject", "rejected"))
	return review
}

// newReviewVerdictCmd is review approve or review reject: a review
// attestation with that result, signed by the reviewer's key.
func newReviewVerdictCmd(g *globals, use, verdict string) *cobra.Command {
	var keyRef, stage, notes, reviewer string
	var w signing.WriteOptions
	cmd := &cobra.Command{
		Use:   use + " REF --key KEY --stage STAGE [--notes TEXT]",
		Short: "Sign a review attestation that " + strings.TrimSuffix(use, "e") + "es REF for a stage",
		Long: `Sign, with the reviewer's KEY, a review attestation (predicate type
https://connectsoft.io/marketplace/review/v1) about the exact digest REF names:
result ` + verdict + `, level STAGE (internal, enterprise or public), the reviewer's name and
notes, dated now. It is stored as cosign stores attestations, so stock
"cosign verify-attestation --type https://connectsoft.io/marketplace/review/v1"
accepts it. An index whose stage policy counts this key's reviews re-evaluates
the version when the registry reports the attestation: approvals lift the
quarantine once the policy passes (docs/phases.md).`,
		Example: `  mkt review ` + use + ` registry.example.com/acme/crm:1.0.0 --key curator.key --stage public --notes "read the code"`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" || stage == "" {
				return nil, usagef("review %s needs --key and --stage", use)
			}
			if !slices.Contains(marketplace.Stages, stage) {
				return nil, usagef("--stage %q: want one of %s", stage, strings.Join(marketplace.Stages, ", "))
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return nil, err
			}
			if reviewer == "" {
				reviewer = "key " + s.Fingerprint[:16]
			}
			pred, err := signing.NewReview(reviewer, verdict, stage, notes, time.Now())
			if err != nil {
				return nil, usageError{err}
			}
			res, err := c.Attest(cmd.Context(), args[0], s, signing.ReviewV1, pred, w)
			if err != nil {
				return nil, err
			}
			return &statementResult{Signed: res, Statement: "review " + verdict, Stage: stage, Reviewer: reviewer}, nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&keyRef, "key", "", "the reviewer's private key file or KMS reference")
	f.StringVar(&stage, "stage", "", "the stage reviewed for: internal, enterprise or public")
	f.StringVar(&notes, "notes", "", "what the reviewer has to say")
	f.StringVar(&reviewer, "reviewer", "", "the reviewer's name (default: the key's fingerprint)")
	f.BoolVar(&w.Referrers, "referrers", false, "store as an OCI 1.1 referrer instead of the .att tag")
	return cmd
}

// newLifecycleCmd is deprecate or yank: a lifecycle attestation.
func newLifecycleCmd(g *globals, use, status string) *cobra.Command {
	var keyRef, reason, successor string
	var w signing.WriteOptions
	what := map[string]string{
		"deprecated": "Policies refuse a deprecated version unless a rule allows deprecated ones; --successor names the version to move to.",
		"yanked":     "Policies refuse a yanked version unless it is pinned by digest (a lockfile), so existing installs keep working.",
	}[status]
	cmd := &cobra.Command{
		Use:   use + " REF --key KEY --reason TEXT",
		Short: "Sign a lifecycle attestation that marks REF " + status,
		Long: `Sign, with KEY, a lifecycle attestation (predicate type
https://connectsoft.io/marketplace/lifecycle/v1) about the exact digest REF
names: status ` + status + `, the reason, dated now. ` + what + `
Whose statements count, and who may lift a yank, is the policy's lifecycle
authorities' rule (docs/policy.md).`,
		Example: `  mkt ` + use + ` registry.example.com/acme/crm:1.0.0 --key security.key --reason "CVE-2026-1234"`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" || reason == "" {
				return nil, usagef("%s needs --key and --reason", use)
			}
			pred, err := signing.NewLifecycle(status, reason, successor, time.Now())
			if err != nil {
				return nil, usageError{err}
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return nil, err
			}
			res, err := c.Attest(cmd.Context(), args[0], s, signing.LifecycleV1, pred, w)
			if err != nil {
				return nil, err
			}
			return &statementResult{Signed: res, Statement: status, Reason: reason, Successor: successor}, nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&keyRef, "key", "", "private key file or KMS reference")
	f.StringVar(&reason, "reason", "", "why (required)")
	if status == "deprecated" {
		f.StringVar(&successor, "successor", "", "the version to use instead")
	}
	f.BoolVar(&w.Referrers, "referrers", false, "store as an OCI 1.1 referrer instead of the .att tag")
	return cmd
}

// statementResult is a review or lifecycle attestation that was signed.
type statementResult struct {
	*signing.Signed
	// Statement says what was stated: "review approved", "yanked", ...
	Statement string `json:"statement"`
	Stage     string `json:"stage,omitempty"`
	Reviewer  string `json:"reviewer,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Successor string `json:"successor,omitempty"`
}

func (r *statementResult) printText(p *printer) {
	at := ""
	if r.Stage != "" {
		at = " for stage " + r.Stage
	}
	fmt.Fprintf(p.stderr, "Attested %s%s about %s with key %s\n", r.Statement, at, r.Reference, r.Fingerprint[:16])
	fmt.Fprintln(p.stdout, r.Reference)
}

func newPromoteCmd(g *globals) *cobra.Command {
	var stage, registry, policyFile, factory string
	var to copySide
	cmd := &cobra.Command{
		Use:   "promote REF --to STAGE --registry DEST[/PREFIX] --policy FILE",
		Short: "Copy a version, with its evidence, into a stage's registry when the stage's policy passes",
		Long: `Evaluate the stage's policy FILE for the version REF names as it will be
verified at DEST/PREFIX/<publisher>/<name> (the policy's rules match the stage's
registry; the evidence is the version's own, copied along unchanged). When every
check passes, copy the artifact with every signature, attestation and referrer
to DEST/PREFIX/<publisher>/<name>:<version>. Otherwise nothing is copied: the
decision is printed, its failed checks say what is missing (a pipeline review,
curators' approvals, terms...), and mkt exits 1. An audit-mode policy that would
deny promotes nothing.`,
		Example: `  mkt promote registry.internal/acme/crm:1.0.0 --to public --registry marketplace.example.com --policy public-policy.yaml`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if stage == "" || registry == "" || policyFile == "" {
				return nil, usagef("promote needs --to, --registry and --policy")
			}
			if !slices.Contains(marketplace.Stages, stage) {
				return nil, usagef("--to %q: want one of %s", stage, strings.Join(marketplace.Stages, ", "))
			}
			dst, err := to.options(g, "to")
			if err != nil {
				return nil, err
			}
			return promote(cmd.Context(), g, args[0], policyFile, marketplace.PromoteOptions{Stage: stage, Registry: registry,
				FactoryVersion: factory, Remote: g.remote(), Destination: &dst})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&stage, "to", "", "the stage: internal, enterprise or public")
	f.StringVar(&registry, "registry", "", "the stage's registry, HOST[/PREFIX]")
	f.StringVar(&policyFile, "policy", "", "the stage's policy file")
	f.StringVar(&factory, "factory-version", "", "the Factory version, for the policy's compatibility check")
	to.register(cmd, "to", "destination")
	return cmd
}

func promote(ctx context.Context, g *globals, ref, policyFile string, o marketplace.PromoteOptions) (result, error) {
	var err error
	if o.Policy, err = policy.Load(ctx, policyFile); err != nil {
		return nil, err
	}
	p, err := marketplace.Promote(ctx, ref, o)
	if p == nil {
		return nil, err
	}
	if err != nil {
		return &promoteResult{p}, err
	}
	return &promoteResult{p}, nil
}

// promoteResult is what promote decided, and copied.
type promoteResult struct{ *marketplace.Promotion }

func (r *promoteResult) printText(p *printer) {
	fmt.Fprint(p.stdout, printableLines(r.Decision.Text()))
	if r.Promoted {
		fmt.Fprintf(p.stderr, "Promoted %s to stage %s: %s (%s)\n", r.Source, r.Stage, r.Destination, fmt.Sprintf("%d related %s copied", len(r.Related), plural(len(r.Related), "manifest")))
	}
}

// newPublisherCmd is the publisher group: the operator's verification of
// a publisher (DESIGN §6.1).
func newPublisherCmd(g *globals) *cobra.Command {
	pub := group(&cobra.Command{Use: "publisher", Short: "Verify publishers: the operator's signed statement of a publisher's tier"})
	var keyRef, tenant, tier, out string
	var pubKeys []string
	verify := &cobra.Command{
		Use:   "verify NAME --tenant T --tier official|verified --publisher-key PUB... --key OPERATOR_KEY -o FILE",
		Short: "Sign, as the operator, that a publisher namespace is verified, with its tenant and keys",
		Long: `Sign, with the operator's KEY, a publisher attestation (predicate type
https://connectsoft.io/marketplace/publisher/v1): namespace NAME belongs to tenant T,
signs with the keys given (their fingerprints), and is vouched for at TIER. It is
written to FILE as a DSSE envelope of an in-toto statement whose subject is that
binding. Name it in the index config (publishers[].verification, with the
operator's public keys in operatorKeys): the index shows the tier as verified only
when the statement verifies and says exactly what the config binds, so a changed
key or tier needs a new statement.`,
		Example: `  mkt publisher verify acme --tenant acme --tier verified --publisher-key keys/acme.pub --key operator.key -o acme.publisher.json`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" || tenant == "" || tier == "" || out == "" || len(pubKeys) == 0 {
				return nil, usagef("publisher verify needs --tenant, --tier, --publisher-key, --key and -o")
			}
			if tier != "official" && tier != "verified" {
				return nil, usagef("--tier %q: want official or verified (community publishers need no verification)", tier)
			}
			keys, err := signing.LoadKeys(cmd.Context(), pubKeys)
			if err != nil {
				return nil, err
			}
			s, err := signing.LoadSigner(cmd.Context(), keyRef, password(g))
			if err != nil {
				return nil, err
			}
			p := &signing.Publisher{Name: args[0], Tenant: tenant, Tier: tier}
			for _, k := range keys {
				p.Keys = append(p.Keys, k.Fingerprint)
			}
			env, err := signing.AttestPublisher(cmd.Context(), s, p)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(out, env, 0o644); err != nil {
				return nil, fmt.Errorf("write the publisher attestation: %w", err)
			}
			return &publisherResult{Publisher: p, Output: out, Fingerprint: s.Fingerprint}, nil
		}),
	}
	f := verify.Flags()
	f.StringVar(&tenant, "tenant", "", "the tenant the namespace belongs to")
	f.StringVar(&tier, "tier", "", "official or verified")
	f.StringArrayVar(&pubKeys, "publisher-key", nil, "a public key of the publisher; repeatable")
	f.StringVar(&keyRef, "key", "", "the operator's private key file or KMS reference")
	f.StringVarP(&out, "output", "o", "", "file to write the attestation (DSSE envelope) to")
	pub.AddCommand(verify)
	return pub
}

// publisherResult is the publisher verification that was written.
type publisherResult struct {
	*signing.Publisher
	Output string `json:"output"`
	// Fingerprint is the operator key's.
	Fingerprint string `json:"fingerprint"`
}

func (r *publisherResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Verified publisher %s (tenant %s, %s, %d keys) with operator key %s\n", r.Name, r.Tenant, r.Tier, len(r.Keys), r.Fingerprint[:16])
	fmt.Fprintln(p.stdout, r.Output)
}
