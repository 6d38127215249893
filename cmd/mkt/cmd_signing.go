package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	// KMS providers for --key awskms://, gcpkms://, azurekms://, hashivault://
	// (sigstore's; registered by import as in the cosign binary).
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
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
	key := &cobra.Command{Use: "key", Short: "Manage signing keys"}
	var prefix string
	var force bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign-compatible key pair (PREFIX.key encrypted, PREFIX.pub)",
		Long: `Write an ECDSA P-256 key pair in cosign's formats: PREFIX.key, encrypted with the
password from COSIGN_PASSWORD (or asked twice on a terminal), and PREFIX.pub.
Stock cosign reads both; keys made by "cosign generate-key-pair" work with mkt.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, pub := prefix+".key", prefix+".pub"
			for _, p := range []string{priv, pub} {
				if _, err := os.Stat(p); err == nil && !force {
					return fmt.Errorf("%s exists: use --force to overwrite it", p)
				}
			}
			privPEM, pubPEM, err := signing.GenerateKeyPair(password(g))
			if err != nil {
				return err
			}
			if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
				return err
			}
			k, err := signing.LoadKey(cmd.Context(), pub)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"privateKey": priv, "publicKey": pub, "fingerprint": k.Fingerprint})
			}
			fmt.Fprintf(g.stderr, "Wrote %s (keep it secret) and %s (share it)\n", priv, pub)
			fmt.Fprintln(g.stdout, k.Fingerprint)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyRef == "" {
				return usagef("sign needs --key")
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return err
			}
			res, err := c.Sign(cmd.Context(), args[0], s, w)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stderr, "Signed %s with key %s\n", res.Reference, res.Fingerprint[:16])
			fmt.Fprintln(g.stdout, res.Reference)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyRef == "" || typ == "" || predFile == "" {
				return usagef("attest needs --key, --type and --predicate")
			}
			uri, err := signing.PredicateType(typ)
			if err != nil {
				return usageError{err}
			}
			pred, err := os.ReadFile(predFile)
			if err != nil {
				return err
			}
			c, s, err := signerClient(cmd.Context(), g, keyRef)
			if err != nil {
				return err
			}
			res, err := c.Attest(cmd.Context(), args[0], s, uri, pred, w)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stderr, "Attested %s about %s with key %s\n", signing.ShortName(uri), res.Reference, res.Fingerprint[:16])
			fmt.Fprintln(g.stdout, res.Reference)
			return nil
		},
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
each --require TYPE, a trusted key attested that digest. It reads both the cosign
tags and OCI referrers, needs no transparency log, and exits 1 with the reason
when a check fails. The newest attestation of a type counts.

With --policy, the policy decides instead: every check of every matching rule
(signature, attestation:<type>, compatibility, license, lifecycle) is printed
with its reason, and a denial exits 1.`,
		Example: `  mkt verify registry.example.com/acme/crm:1.0.0 --key publisher.pub --key review.pub --require review`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pf.policyFile != "" {
				if len(keyRefs) > 0 || len(require) > 0 {
					return usagef("--policy replaces --key and --require: give one or the other")
				}
				_, err := verifyPolicy(cmd.Context(), g, args[0], &pf, true)
				return err
			}
			if len(keyRefs) == 0 {
				return usagef("verify needs at least one --key, or --policy")
			}
			opts := signing.VerifyOptions{}
			for _, r := range keyRefs {
				k, err := signing.LoadKey(cmd.Context(), r)
				if err != nil {
					return err
				}
				opts.Keys = append(opts.Keys, k)
			}
			for _, t := range require {
				uri, err := signing.PredicateType(t)
				if err != nil {
					return usageError{err}
				}
				opts.Require = append(opts.Require, uri)
			}
			c, err := signing.NewClient(g.remote())
			if err != nil {
				return err
			}
			res, err := c.Verify(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if g.json() {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				printVerification(g, res)
			}
			if !res.Passed {
				return fmt.Errorf("%s: %w", args[0], errVerificationFailed)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyRefs, "key", nil, "trusted public key (file, PEM or KMS reference); repeatable")
	cmd.Flags().StringArrayVar(&require, "require", nil, "attestation type a trusted key must have made; repeatable")
	cmd.Flags().StringVar(&pf.policyFile, "policy", "", "policy file to evaluate instead of --key/--require")
	cmd.Flags().StringVar(&pf.factory, "factory-version", "", "the Factory version, for the policy's compatibility check")
	return cmd
}

func printVerification(g *globals, res *signing.Result) {
	verdict := "PASSED"
	if !res.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(g.stdout, "%s %s\n", verdict, res.Digest)
	for _, ck := range res.Checks {
		mark := "ok  "
		if !ck.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(g.stdout, "  %s %-28s %s\n", mark, ck.Name, artifact.Printable(ck.Reason))
	}
	if g.verbose {
		fmt.Fprintf(g.stderr, "%d registry requests\n", res.Requests)
	}
}

// printRelatedSignatures lists what inspect found, verified against keys
// when --key was given.
func printRelatedSignatures(g *globals, res *signing.Result, keysGiven bool) {
	w := g.stdout
	if len(res.Signatures) == 0 && len(res.Attestations) == 0 {
		fmt.Fprintln(w, "Signatures:     none")
		return
	}
	fmt.Fprintln(w, "Signatures:")
	for _, s := range res.Signatures {
		fmt.Fprintf(w, "  %-8s %s\n", s.Source, signerText(s.Verified, s.Fingerprint, keysGiven))
	}
	fmt.Fprintln(w, "Attestations:")
	for _, a := range res.Attestations {
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
	var opts signing.VerifyOptions
	for _, r := range keyRefs {
		k, err := signing.LoadKey(ctx, r)
		if err != nil {
			return "", err
		}
		opts.Keys = append(opts.Keys, k)
	}
	c, err := signing.NewClient(g.remote())
	if err != nil {
		return "", err
	}
	res, err := c.Verify(ctx, ref, opts)
	if err != nil {
		return "", err
	}
	if !res.Passed {
		fmt.Fprintf(g.stderr, "%s: %s\n", res.Checks[0].Name, res.Checks[0].Reason)
		return "", fmt.Errorf("%s: %w", ref, errVerificationFailed)
	}
	return res.Digest, nil
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
