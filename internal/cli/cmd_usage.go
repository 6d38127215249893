package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/client"
	"github.com/spf13/cobra"
)

func newUsageCmd(g *globals) *cobra.Command {
	var indexURL string
	var q client.UsageQuery
	var csv bool
	cmd := &cobra.Command{
		Use:   "usage --index URL [--publisher P] [--name NAME] [--tenant T] [--from DATE] [--to DATE] [--granularity day|month] [--csv]",
		Short: "Show the usage an index metered: pulls, installs and seats per version, tenant and day or month",
		Long: "Ask an index for the usage it counted (registry pulls of versions, install and seat reports), as MKT_INDEX_TOKEN may see it: " +
			"a tenant's token its own usage; a publisher token also its extensions' usage by every tenant; the operator's admin token all of it. " +
			"--from (default: the first day of this month) is inclusive, --to exclusive; both take a date (2026-11-01) or a month (2026-11). " +
			"--csv prints the index's CSV as it is.",
		Example: `  MKT_INDEX_TOKEN=... mkt usage --index https://index.example.com --publisher acme --from 2026-11 --granularity month
  mkt usage --index https://index.example.com --name acme/crm --from 2026-11-01 --to 2026-12-01 --csv > november.csv`,
		Args: rangeArgs(0, 0),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if indexURL == "" {
				return nil, usagef("usage needs --index URL")
			}
			switch q.Granularity {
			case "day", "month":
			default:
				return nil, usagef("--granularity %q: want day or month", q.Granularity)
			}
			if csv && g.format == "json" {
				return nil, usagef("give --csv or --format json, not both")
			}
			c := &client.Client{URL: indexURL, Token: os.Getenv("MKT_INDEX_TOKEN")}
			if csv {
				var b bytes.Buffer
				if err := c.UsageCSV(cmd.Context(), q, &b); err != nil {
					return nil, fmt.Errorf("usage: %w", err)
				}
				return &usageCSV{b.String()}, nil
			}
			page, err := c.Usage(cmd.Context(), q)
			if err != nil {
				return nil, fmt.Errorf("usage: %w", err)
			}
			return &usageResult{page}, nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&indexURL, "index", "", "index service URL")
	fl.StringVar(&q.Publisher, "publisher", "", "only this publisher's extensions")
	fl.StringVar(&q.Name, "name", "", "only this extension (publisher/name)")
	fl.StringVar(&q.Tenant, "tenant", "", "only this tenant's usage")
	fl.StringVar(&q.From, "from", "", "first day counted (2026-11-01, or a month: 2026-11); default: the first day of this month")
	fl.StringVar(&q.To, "to", "", "first day not counted; default: none")
	fl.StringVar(&q.Granularity, "granularity", "day", "day or month")
	fl.BoolVar(&csv, "csv", false, "print CSV (Accept: text/csv)")
	return cmd
}

// usageResult is the index API's usage answer as index/client reads it:
// its JSON is the API's, field for field (GET /api/v1/usage).
type usageResult struct {
	*client.UsagePage
}

func (r *usageResult) printText(p *printer) {
	if len(r.Rows) > 0 {
		fmt.Fprintf(p.stdout, "%-10s  %-16s  %-32s  %-12s  %8s  %8s  %6s\n", "PERIOD", "TENANT", "EXTENSION", "VERSION", "PULLS", "INSTALLS", "SEATS")
	}
	var pulls, installs int64
	for _, u := range r.Rows {
		fmt.Fprintf(p.stdout, "%-10s  %-16s  %-32s  %-12s  %8d  %8d  %6d\n", artifact.Printable(u.Period), artifact.Printable(u.Tenant),
			artifact.Printable(u.Name), artifact.Printable(u.Version), u.Pulls, u.Installs, u.Seats)
		pulls += u.Pulls
		installs += u.Installs
	}
	fmt.Fprintf(p.stderr, "%d rows by %s: %d pulls, %d installs\n", len(r.Rows), r.Granularity, pulls, installs)
}

// usageCSV is the index's CSV, printed as it is; JSON output is refused
// with --csv, so it never prints as JSON.
type usageCSV struct {
	CSV string `json:"csv"`
}

func (r *usageCSV) printText(p *printer) {
	// The index escapes fields as CSV does; a terminal's control
	// characters are the only thing left to neutralise.
	for _, line := range strings.SplitAfter(r.CSV, "\n") {
		fmt.Fprint(p.stdout, artifact.Printable(strings.TrimSuffix(line, "\n")))
		if strings.HasSuffix(line, "\n") {
			fmt.Fprintln(p.stdout)
		}
	}
}
