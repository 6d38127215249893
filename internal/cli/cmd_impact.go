package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/spf13/cobra"
)

func newImpactCmd(g *globals) *cobra.Command {
	var indexURL, digest, key string
	cmd := &cobra.Command{
		Use:   "impact [NAME@VERSION] (--digest D | --key FINGERPRINT) --index URL",
		Short: "Show the blast radius of a version, digest or publisher key: every version that depends on it, and who used them",
		Long: "Ask an index for the reverse dependency closure of a version (by name@version, manifest digest or the fingerprint of a publisher key, for every version it signed) " +
			"and the tenants that used any of it. MKT_INDEX_TOKEN must be the operator's admin token (everything) or a publisher token of the version's tenant " +
			"(the dependents it may see, other tenants counted, not named).",
		Example: `  MKT_INDEX_TOKEN=... mkt index impact acme/http@1.2.0 --index https://index.example.com
  mkt index impact --digest sha256:4f1c... --index https://index.example.com --format json
  mkt index impact --key SHA256:Xq2... --index https://index.example.com`,
		Args: rangeArgs(0, 1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if indexURL == "" {
				return nil, usagef("impact needs --index URL")
			}
			q := client.ImpactQuery{Digest: digest, Key: key}
			if len(args) == 1 {
				name, version, ok := strings.Cut(args[0], "@")
				if !ok || name == "" || version == "" {
					return nil, usagef("impact %s: want NAME@VERSION (acme/http@1.2.0)", args[0])
				}
				q.Name, q.Version = name, version
			}
			given := 0
			for _, s := range []string{q.Name, digest, key} {
				if s != "" {
					given++
				}
			}
			if given != 1 {
				return nil, usagef("impact needs one of NAME@VERSION, --digest or --key")
			}
			c := &client.Client{URL: indexURL, Token: os.Getenv("MKT_INDEX_TOKEN")}
			res, err := c.Impact(cmd.Context(), q)
			if err != nil {
				return nil, fmt.Errorf("impact: %w", err)
			}
			return &impactResult{res}, nil
		}),
	}
	cmd.Flags().StringVar(&indexURL, "index", "", "index service URL")
	cmd.Flags().StringVar(&digest, "digest", "", "a manifest digest (sha256:…) instead of NAME@VERSION")
	cmd.Flags().StringVar(&key, "key", "", "a publisher key's fingerprint: every version it signed")
	return cmd
}

// impactResult is the index API's impact answer as index/client reads it:
// its JSON is the API's, field for field (GET /api/v1/impact).
type impactResult struct {
	*client.Impact
}

func (r *impactResult) printText(p *printer) {
	ref := func(v client.ImpactRef) string {
		return artifact.Printable(v.Name) + "@" + artifact.Printable(v.Version)
	}
	for _, t := range r.Targets {
		life := ""
		if t.Lifecycle != "" {
			life = " " + artifact.Printable(t.Lifecycle)
		}
		fmt.Fprintf(p.stdout, "%s  %s  %s%s\n", ref(t.ImpactRef), artifact.Printable(t.Tenant), artifact.Printable(t.Digest), life)
	}
	for _, d := range r.Dependents {
		via := ""
		if d.Via != nil {
			via = fmt.Sprintf("needs %s (%s)", ref(*d.Via), artifact.Printable(d.Constraint))
		}
		fmt.Fprintf(p.stdout, "%s%-40s %-12s %s\n", strings.Repeat("  ", d.Depth), ref(d.ImpactRef), artifact.Printable(d.Tenant), via)
	}
	var tenants []string
	for _, t := range r.Tenants {
		tenants = append(tenants, artifact.Printable(t.Tenant))
	}
	fmt.Fprintf(p.stdout, "tenants: %s\n", strings.Join(tenants, ", "))
	from := "usage events"
	if r.TenantsFrom == "graph" {
		from = "the tenants that own the versions (no usage recorded)"
	}
	fmt.Fprintf(p.stderr, "%d targets, %d dependents (%d you may not see), %d tenants named and %d others; tenants from %s\n",
		len(r.Targets), len(r.Dependents), r.HiddenDependents, len(r.Tenants), r.OtherTenants, from)
}
