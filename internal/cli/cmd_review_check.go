package cli

import (
	"context"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/spf13/cobra"
)

// newReviewCheckCmd runs the pipeline in mkt-server: the review package
// links gitleaks, whose report package brings html/template (through
// sprig) and whose archive readers and rule set cost start-up time, none of
// which mkt may link (TestMktLinksNoKubernetesOrKMSSDK).
func newReviewCheckCmd(g *globals) *cobra.Command {
	var f policyFlags
	var o serverapi.ReviewOptions
	var keyRef string
	var attest bool
	cmd := &cobra.Command{
		Use:   "check DIR|REF [--stage S] [--policy FILE] [--osv-db DIR] [--attest --key K]",
		Short: "Run the automated review checks on an extension directory or a pushed artifact",
		Long: `Read the extension once — a directory as mkt push would pack it, or a pushed
artifact's layer streamed from its registry — and run every check on each file
in that one pass: descriptor and content agree, licence (a valid SPDX
expression, allowed by the stage policy), secrets (gitleaks' rules), executables
and scripts against spec.permissions, size and file-count limits, the
dependency closure under the stage policy (with --registry or --index),
compatibility evidence (a compatibility attestation by a key the stage policy
trusts; a pushed artifact only), a CycloneDX SBOM of the files and of the
dependency manifests inside (go.mod, package.json, package-lock.json,
requirements.txt), and known vulnerabilities from an offline OSV database
(--osv-db, osv.dev's all.zip unpacked).

A check that cannot run is reported as skipped, with the reason, never as
passed. A finding at or above the blocking severity (high; medium at the
public stage; --block-at) rejects: exit 1. With --attest --key K the result is
signed as a review attestation (reviewer "pipeline", level = stage) and the
SBOM as a CycloneDX attestation, on the digest that was read.

mkt runs this command in mkt-server, which links gitleaks (docs/review.md).`,
		Example: `  mkt review check ./crm --osv-db osv/
  mkt review check registry.example.com/acme/crm:1.4.2 --stage public --policy public.yaml \
      --registry registry.example.com --osv-db osv/ --attest --key pipeline.key`,
		Args: exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			switch o.Stage {
			case "internal", "enterprise", "public":
			default:
				return nil, usagef("--stage %q: want internal, enterprise or public", o.Stage)
			}
			if attest != (keyRef != "") {
				return nil, usagef("--attest and --key go together: --attest --key K signs the result with the pipeline's key K")
			}
			return g.server(cmd, func(srv serverapi.Commands, env serverapi.Env) (serverapi.Result, error) {
				ctx := cmd.Context()
				o.Target, o.FactoryVersion = args[0], f.factory
				p, err := f.load(ctx, g)
				if err != nil {
					return nil, err
				}
				o.Policy = p
				if f.registry != "" || f.index != "" {
					mo, err := f.options(ctx, g)
					if err != nil {
						return nil, err
					}
					o.Resolve = func(ctx context.Context, reqs []resolve.Requirement) (*resolve.Resolution, error) {
						return marketplace.Resolve(ctx, reqs, mo)
					}
				}
				if attest {
					if o.Client, o.Signer, err = signerClient(ctx, g, keyRef); err != nil {
						return nil, err
					}
				}
				return srv.ReviewCheck(ctx, env, o)
			})
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Stage, "stage", "internal", "review level: internal, enterprise or public")
	fl.StringVar(&o.BlockAt, "block-at", "", "least severity that rejects: info, low, medium, high, critical (default: high; medium at the public stage)")
	fl.StringVar(&f.policyFile, "policy", "", "the stage's policy file: licence rules, the keys whose compatibility attestations count, the dependencies' decisions")
	fl.StringVar(&f.factory, "factory-version", "", "Factory version the dependency closure is resolved for")
	fl.StringVar(&f.registry, "registry", "", "HOST[/PREFIX] where dependencies are resolved (acme/http → HOST/PREFIX/acme/http)")
	fl.StringVar(&f.index, "index", "", "index service URL that resolves dependencies (MKT_INDEX_TOKEN is sent as its bearer token)")
	fl.StringVar(&o.OSVDir, "osv-db", "", "offline OSV database directory (osv.dev's all.zip, unpacked)")
	fl.IntVar(&o.MaxFiles, "max-files", 0, "most files an extension may hold (0: the default, 10000; negative: no limit)")
	fl.Int64Var(&o.MaxSize, "max-size", 0, "most bytes of content in all (0: the default, 256 MiB; negative: no limit)")
	fl.Int64Var(&o.MaxFileSize, "max-file-size", 0, "most bytes in one file (0: the default, 64 MiB; negative: no limit)")
	fl.BoolVar(&attest, "attest", false, "sign the result as a review attestation and the SBOM as a CycloneDX attestation (needs --key)")
	fl.StringVar(&keyRef, "key", "", "the pipeline's private key file or KMS reference, for --attest")
	fl.BoolVar(&o.Referrers, "referrers", false, "store the attestations as OCI 1.1 referrers instead of the .att tag")
	return cmd
}
