package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// errVerificationFailed makes a failed verification exit 1 after its report.
var errVerificationFailed = errors.New("verification failed")

// password reads COSIGN_PASSWORD, or asks on a terminal.
func password(g *globals) signing.PassFunc {
	return func(confirm bool) ([]byte, error) {
		if pw, err := signing.EnvPassword(confirm); err == nil {
			return pw, nil
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return nil, errors.New("COSIGN_PASSWORD is not set and stdin is not a terminal to ask on")
		}
		fmt.Fprint(g.stderr, "Enter password for private key: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(g.stderr)
		if err != nil || !confirm {
			return pw, err
		}
		fmt.Fprint(g.stderr, "Enter password for private key again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, errors.New("passwords do not match")
		}
		return pw, nil
	}
}

func newKeyCmd(g *globals) *cobra.Command {
	key := group(&cobra.Command{Use: "key", Short: "Manage signing keys"})
	var prefix string
	var force bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign-compatible key pair (PREFIX.key encrypted, PREFIX.pub)",
		Long: `Write an ECDSA P-256 key pair in cosign's formats: PREFIX.key, encrypted with the
password from COSIGN_PASSWORD (or asked twice on a terminal), and PREFIX.pub.
Stock cosign reads both; keys made by "cosign generate-key-pair" work with mkt.`,
		Args: exactArgs(0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			kp, err := signing.WriteKeyPair(prefix, password(g), force)
			if err != nil {
				return nil, err
			}
			return &keyPairResult{kp}, nil
		}),
	}
	gen.Flags().StringVar(&prefix, "output-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	gen.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	key.AddCommand(gen)
	return key
}

func newSignCmd(g *globals) *cobra.Command {
	var keyRef string
	var w signing.WriteOptions
	cmd := &cobra.Command{
		Use:   "sign REF --key KEY",
		Short: "Sign an artifact as cosign does",
		Long: `Sign the manifest REF names with KEY (a cosign.key file, password from
COSIGN_PASSWORD, or a KMS reference). The signature goes to the sha256-<hex>.sig
tag, or with --referrers to an OCI 1.1 referrer. Signing again with the same key
adds nothing.`,
		Example: `  COSIGN_PASSWORD=... mkt sign registry.example.com/acme/crm:1.0.0 --key cosign.key`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" {
				return nil, usagef("sign needs --key")
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return nil, err
			}
			res, err := c.Sign(cmd.Context(), args[0], s, w)
			if err != nil {
				return nil, err
			}
			return &signedResult{res}, nil
		}),
	}
	cmd.Flags().StringVar(&keyRef, "key", "", "private key file or KMS reference")
	cmd.Flags().BoolVar(&w.Referrers, "referrers", false, "store as an OCI 1.1 referrer instead of the .sig tag")
	return cmd
}

func newAttestCmd(g *globals) *cobra.Command {
	var keyRef, typ, predFile string
	var w signing.WriteOptions
	cmd := &cobra.Command{
		Use:   "attest REF --key KEY --type TYPE --predicate FILE",
		Short: "Attach a signed in-toto attestation, as cosign attest does",
		Long: `Sign the predicate in FILE as an in-toto statement about the manifest REF names,
in a DSSE envelope, stored in the sha256-<hex>.att tag (or as a referrer with
--referrers). TYPE is review, compatibility, terms, lifecycle, slsaprovenance,
spdxjson, cyclonedx or any predicate type URI. Marketplace predicates are
validated first and given the current time when they have none.`,
		Example: `  mkt attest registry.example.com/acme/crm:1.0.0 --key review.key --type review --predicate review.json`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if keyRef == "" || typ == "" || predFile == "" {
				return nil, usagef("attest needs --key, --type and --predicate")
			}
			uri, err := signing.PredicateType(typ)
			if err != nil {
				return nil, usageError{err}
			}
			pred, err := os.ReadFile(predFile)
			if err != nil {
				return nil, fmt.Errorf("read the predicate: %w", err)
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return nil, err
			}
			res, err := c.Attest(cmd.Context(), args[0], s, uri, pred, w)
			if err != nil {
				return nil, err
			}
			return &signedResult{res}, nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&keyRef, "key", "", "private key file or KMS reference")
	f.StringVar(&typ, "type", "", "predicate type: short name or URI")
	f.StringVar(&predFile, "predicate", "", "JSON file holding the predicate")
	f.BoolVar(&w.Referrers, "referrers", false, "store as an OCI 1.1 referrer instead of the .att tag")
	return cmd
}

func newVerifyCmd(g *globals) *cobra.Command {
	var keyRefs, require []string
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "verify REF (--key PUB [--key PUB2...] [--require TYPE]... | --policy FILE [--factory-version V])",
		Short: "Check that trusted keys signed, and attested, this exact digest",
		Long: `Verify passes only when a trusted key signed the exact digest REF names and, for
each --require TYPE, a trusted key attested that digest with a predicate valid
for its type (review, compatibility, terms and lifecycle have schemas). It reads
both the cosign tags and OCI referrers and needs no transparency log. The newest
attestation of a type counts; a version one of the keys yanked is refused unless
REF is a digest.

--key and --require make a key-only policy; --policy FILE evaluates a policy
file instead. Both print the same decision: every check (signature,
attestation:<type>, compatibility, license, lifecycle) with its reason, and a
denial exits 1.`,
		Example: `  mkt verify registry.example.com/acme/crm:1.0.0 --key publisher.pub --key review.pub --require review`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if pf.policyFile != "" {
				if len(keyRefs) > 0 || len(require) > 0 {
					return nil, usagef("--policy replaces --key and --require: give one or the other")
				}
				d, err := decidePolicy(cmd.Context(), g, args[0], &pf)
				if d == nil {
					return nil, err
				}
				return &policyVerification{d}, err
			}
			if len(keyRefs) == 0 {
				return nil, usagef("verify needs at least one --key, or --policy")
			}
			for _, t := range require {
				if _, err := signing.PredicateType(t); err != nil {
					return nil, usageError{err}
				}
			}
			keys, err := signing.LoadKeys(cmd.Context(), keyRefs)
			if err != nil {
				return nil, err
			}
			// --key and --require are a key-only policy: the same decision,
			// printed the same way, as --policy.
			d, err := marketplace.VerifyKeys(cmd.Context(), args[0], keys, require, g.remote())
			if err != nil {
				return nil, err
			}
			if !d.Allowed {
				return &policyVerification{d}, fmt.Errorf("%s: %w", args[0], errVerificationFailed)
			}
			return &policyVerification{d}, nil
		}),
	}
	cmd.Flags().StringArrayVar(&keyRefs, "key", nil, "trusted public key (file, PEM or KMS reference); repeatable")
	cmd.Flags().StringArrayVar(&require, "require", nil, "attestation type a trusted key must have made; repeatable")
	cmd.Flags().StringVar(&pf.policyFile, "policy", "", "policy file to evaluate instead of --key/--require")
	cmd.Flags().StringVar(&pf.factory, "factory-version", "", "the Factory version, for the policy's compatibility check")
	return cmd
}

// keyPairResult is the key pair key generate wrote.
type keyPairResult struct{ *signing.KeyPair }

func (r *keyPairResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Wrote %s (keep it secret) and %s (share it)\n", r.PrivateKey, r.PublicKey)
	fmt.Fprintln(p.stdout, r.Fingerprint)
}

// signedResult is what sign or attest stored: digest, reference,
// fingerprint, and for an attestation its predicateType.
type signedResult struct{ *signing.Signed }

func (r *signedResult) printText(p *printer) {
	if r.PredicateType != "" {
		fmt.Fprintf(p.stderr, "Attested %s about %s with key %s\n", signing.ShortName(r.PredicateType), r.Reference, r.Fingerprint[:16])
	} else {
		fmt.Fprintf(p.stderr, "Signed %s with key %s\n", r.Reference, r.Fingerprint[:16])
	}
	fmt.Fprintln(p.stdout, r.Reference)
}

// printRelatedSignatures lists what inspect found, verified against keys
// when --key was given.
func printRelatedSignatures(p *printer, sigs []signing.SignatureResult, atts []signing.AttestationResult, keysGiven bool) {
	w := p.stdout
	if len(sigs) == 0 && len(atts) == 0 {
		fmt.Fprintln(w, "Signatures:     none")
		return
	}
	fmt.Fprintln(w, "Signatures:")
	for _, s := range sigs {
		fmt.Fprintf(w, "  %-8s %s\n", s.Source, signerText(s.Verified, s.Fingerprint, keysGiven))
	}
	fmt.Fprintln(w, "Attestations:")
	for _, a := range atts {
		when := ""
		if !a.Time.IsZero() {
			when = a.Time.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(w, "  %-8s %-14s %-20s %s\n", a.Source, artifact.Printable(signing.ShortName(a.PredicateType)), when, signerText(a.Verified, a.Fingerprint, keysGiven))
	}
}

func signerText(verified bool, fp string, keysGiven bool) string {
	switch {
	case verified:
		return "signed by " + fp[:16] + " (verified)"
	case keysGiven:
		return "NOT signed by any given key"
	}
	return "signer unknown (pass --key to verify)"
}

// verifyKeys checks that one of the keys signed what ref names and returns
// the digest it checked, so callers act on exactly it.
func verifyKeys(ctx context.Context, g *globals, ref string, keyRefs []string) (string, error) {
	keys, err := signing.LoadKeys(ctx, keyRefs)
	if err != nil {
		return "", err
	}
	d, err := marketplace.VerifyKeys(ctx, ref, keys, nil, g.remote())
	if err != nil {
		return "", err
	}
	if !d.Allowed {
		return "", fmt.Errorf("%s: %s: %w", ref, artifact.Printable(strings.Join(d.Failed(), "; ")), errVerificationFailed)
	}
	return d.Digest, nil
}

// signerClient is what sign and attest need: a registry client and the
// signer of keyRef.
func signerClient(ctx context.Context, g *globals, keyRef string) (*signing.Client, *signing.Signer, error) {
	c, err := signing.NewClient(g.remote())
	if err != nil {
		return nil, nil, err
	}
	s, err := signing.LoadSigner(ctx, keyRef, password(g))
	if err != nil {
		return nil, nil, err
	}
	return c, s, nil
}
