package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/control"
	"github.com/connectsoft/marketplace/signing"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newControlCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "control", Short: "The operator's signed kill switch: push, show and add to a control list"})
	cmd.AddCommand(newControlPushCmd(g), newControlShowCmd(g), newControlAddCmd(g))
	return cmd
}

func newControlPushCmd(g *globals) *cobra.Command {
	var keyRef string
	cmd := &cobra.Command{
		Use:   "push FILE REF --key KEY",
		Short: "Check a control list, push it as an OCI artifact and sign it",
		Long: `Check the control list in FILE (YAML or JSON, kind ControlList), push it to REF
(a tag, e.g. registry.example.com/connectsoft/control:latest) as an OCI artifact
of type application/vnd.connectsoft.controllist.v1, and sign it with KEY as
cosign does: "cosign verify --key operator.pub REF" accepts it. A list whose
sequence is not above the one REF holds is refused: consumers would take it
for a rollback.`,
		Example: `  COSIGN_PASSWORD=... mkt control push control.yaml registry.example.com/connectsoft/control:latest --key operator.key`,
		Args:    exactArgs(2),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" {
				return nil, usagef("control push needs --key")
			}
			l, err := readControlList(args[0])
			if err != nil {
				return nil, err
			}
			s, err := signing.LoadSigner(cmd.Context(), keyRef, password(g))
			if err != nil {
				return nil, err
			}
			res, err := control.Push(cmd.Context(), l, args[1], s, g.remote())
			if err != nil {
				return nil, err
			}
			return &controlPushResult{res}, nil
		}),
	}
	cmd.Flags().StringVar(&keyRef, "key", "", "the operator's private key file or KMS reference")
	return cmd
}

func readControlList(path string) (*control.List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read control list: %w", err)
	}
	return control.Parse(data, path)
}

type controlPushResult struct{ *control.Pushed }

func (r *controlPushResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Pushed control list sequence %d (%d entries, expires %s), signed with key %s\n", r.Sequence, r.Entries, r.Expires, r.Fingerprint[:16])
	fmt.Fprintln(p.stdout, r.Reference)
}

func newControlShowCmd(g *globals) *cobra.Command {
	var keyRefs []string
	cmd := &cobra.Command{
		Use:   "show REF [--key PUB]...",
		Short: "Show a pushed control list, verifying its signature with --key",
		Long: `Read the control list REF names and print it. With --key, the list must be
signed by one of the keys (exit 1 otherwise); without, it is shown unverified,
and says so.`,
		Example: `  mkt control show registry.example.com/connectsoft/control:latest --key operator.pub`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			keys, err := signing.LoadKeys(cmd.Context(), keyRefs)
			if err != nil {
				return nil, err
			}
			f, err := control.Fetch(cmd.Context(), args[0], keys, g.remote())
			if err != nil {
				return nil, err
			}
			return &controlShowResult{Fetched: f, Verified: len(keys) > 0}, nil
		}),
	}
	cmd.Flags().StringArrayVar(&keyRefs, "key", nil, "operator public key the list must be signed by; repeatable")
	return cmd
}

type controlShowResult struct {
	*control.Fetched
	Verified bool `json:"verified"`
}

func (r *controlShowResult) printText(p *printer) {
	l := r.List
	fmt.Fprintf(p.stdout, "Control list %s\n", r.Reference)
	fmt.Fprintf(p.stdout, "  sequence %d, expires %s, %d entries\n", l.Sequence, l.Expires.UTC().Format(time.RFC3339), len(l.Entries))
	if r.Verified {
		short := make([]string, len(r.Signers))
		for i, s := range r.Signers {
			short[i] = s[:16]
		}
		fmt.Fprintf(p.stdout, "  signed by %s\n", strings.Join(short, ", "))
	} else {
		fmt.Fprintln(p.stdout, "  signature NOT verified (give --key operator.pub)")
	}
	for i, e := range l.Entries {
		fmt.Fprintf(p.stdout, "  [%d] %-5s %s\n", i, e.Action, e.Describe())
		fmt.Fprintf(p.stdout, "        %s (%s)\n", printableLines(e.Reason), e.Time.UTC().Format(time.RFC3339))
	}
}

func newControlAddCmd(g *globals) *cobra.Command {
	var reason, action string
	cmd := &cobra.Command{
		Use:   "add FILE REF --reason TEXT [--action block|yank]",
		Short: "Add an entry for the extension REF names to the control list in FILE",
		Long: `Fetch the extension REF names, hash its files as its layer streams, and add an
entry to the control list in FILE that selects it by manifest, layer and content
digest and by name and version: the same files stay refused when they are
republished under another name, by another publisher. Raise sequence and run
"mkt control push" to publish it.`,
		Example: `  mkt control add control.yaml registry.example.com/acme/evil:1.0.0 --reason "steals tokens"`,
		Args:    exactArgs(2),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if strings.TrimSpace(reason) == "" {
				return nil, usagef("control add needs --reason: say why, for the people it stops")
			}
			if action != control.Block && action != control.Yank {
				return nil, usagef("--action %q: want block or yank", action)
			}
			l, err := readControlList(args[0])
			if err != nil {
				return nil, err
			}
			e, err := control.EntryFor(cmd.Context(), args[1], g.remote(), action, reason, time.Now())
			if err != nil {
				return nil, err
			}
			l.Entries = append(l.Entries, *e)
			out, err := yaml.Marshal(l)
			if err != nil {
				return nil, err
			}
			if _, err := control.Parse(out, args[0]); err != nil {
				return nil, err
			}
			if err := os.WriteFile(args[0], out, 0o644); err != nil {
				return nil, err
			}
			return &controlAddResult{File: args[0], Entry: e, Entries: len(l.Entries)}, nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the people it stops (required)")
	cmd.Flags().StringVar(&action, "action", control.Block, "block (refused everywhere) or yank (refused unless pinned by digest)")
	return cmd
}

type controlAddResult struct {
	File    string         `json:"file"`
	Entry   *control.Entry `json:"entry"`
	Entries int            `json:"entries"`
}

func (r *controlAddResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Added entry %d to %s: %s %s; raise sequence, then mkt control push\n", r.Entries-1, r.File, r.Entry.Action, r.Entry.Describe())
	fmt.Fprintln(p.stdout, r.Entry.ContentDigest)
}

func newAuditCmd(g *globals) *cobra.Command {
	var pf policyFlags
	var lockfile string
	cmd := &cobra.Command{
		Use:   "audit DIR --policy FILE [--lockfile F]",
		Short: "Check installed extensions against the control list, lifecycle and reviews",
		Long: `Check every extension the lockfile says was installed into DIR against the
policy as it stands today: the control list (by digest and by the files on disk,
whatever their name), lifecycle (a version yanked since is no longer excused by
its pinned digest) and the policy's attestation rules (a review revoked since).
Files changed on disk since install are reported too. Exit 1 with what must go
and why.`,
		Example: `  mkt audit ./extensions --policy policy.yaml --lockfile extensions.lock`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if pf.policyFile == "" {
				return nil, usagef("audit needs --policy FILE: its control list, lifecycle and review rules decide what may stay")
			}
			p, err := pf.load(cmd.Context(), g)
			if err != nil {
				return nil, err
			}
			rep, err := marketplace.Audit(cmd.Context(), marketplace.AuditOptions{Dir: args[0], Lockfile: lockfile, Policy: p, Remote: g.remote()})
			if rep == nil {
				return nil, err
			}
			return &auditResult{rep}, err
		}),
	}
	cmd.Flags().StringVar(&pf.policyFile, "policy", "", "policy file: its controlList, lifecycle and attestation rules")
	cmd.Flags().StringVar(&lockfile, "lockfile", "extensions.lock", "the lockfile install wrote")
	return cmd
}

type auditResult struct{ *marketplace.AuditReport }

func (r *auditResult) printText(p *printer) {
	for _, f := range r.Extensions {
		mark := "ok  "
		if f.MustGo {
			mark = "GO  "
		}
		fmt.Fprintf(p.stdout, "%s %s@%s (%s)\n", mark, f.Name, f.Version, f.Digest)
		for _, why := range f.Reasons {
			fmt.Fprintf(p.stdout, "       %s\n", printableLines(why))
		}
	}
	fmt.Fprintf(p.stdout, "%d of %d installed extensions must go\n", r.MustGo, len(r.Extensions))
}
