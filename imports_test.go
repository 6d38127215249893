package marketplace_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGoAPILinksNoServerPackages keeps Factory's import graph (DESIGN §8)
// free of what only the index server needs: its packages, the SQL drivers,
// Prometheus, River and the web's HTML templates. The Go API speaks to an
// index through index/client alone.
func TestGoAPILinksNoServerPackages(t *testing.T) {
	const root = "github.com/connectsoft/marketplace"
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imps, _ := strings.Cut(line, ": ")
		imports[pkg] = strings.Fields(imps)
	}
	if _, ok := imports[root]; !ok {
		t.Fatalf("go list printed no %s:\n%s", root, out)
	}
	for _, pkg := range []string{
		root + "/index",
		root + "/index/store",
		root + "/index/catalog",
		"modernc.org/sqlite",
		"github.com/jackc/pgx/v5/stdlib",
		"github.com/lib/pq",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/riverqueue/river",
		"html/template",
	} {
		chain := importChain(imports, root, pkg, func(string) bool { return false })
		if chain == nil {
			continue
		}
		t.Errorf("the Go API links %s: %s", pkg, strings.Join(chain, " → "))
	}
}

// TestGoAPILinksNoTemplatesValidatorOrGRPC keeps cosign's transparency-log
// client out of the Go API (issue 10): cosign's pkg/oci and pkg/cosign link
// rekor's client and with it go-openapi (html/template in its middleware;
// govalidator, which compiles regular expressions at init) and gRPC.
// signing reads and writes cosign's formats without them.
func TestGoAPILinksNoTemplatesValidatorOrGRPC(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imps, _ := strings.Cut(line, ": ")
		imports[pkg] = strings.Fields(imps)
	}
	const root = "github.com/connectsoft/marketplace"
	for _, pkg := range []string{
		"html/template",
		"github.com/asaskevich/govalidator",
		"google.golang.org/grpc",
		"github.com/go-openapi/runtime",
		"github.com/sigstore/rekor/pkg/client",
		"github.com/sigstore/cosign/v2/pkg/cosign",
		"github.com/sigstore/cosign/v2/pkg/oci",
	} {
		if chain := importChain(imports, root, pkg, func(string) bool { return false }); chain != nil {
			t.Errorf("the Go API links %s: %s", pkg, strings.Join(chain, " → "))
		}
	}
}

// importChain is a shortest import chain from root to pkg that passes no
// package skip reports, or nil when there is none.
func importChain(imports map[string][]string, root, pkg string, skip func(string) bool) []string {
	parent := map[string]string{root: ""}
	for queue := []string{root}; len(queue) > 0; queue = queue[1:] {
		cur := queue[0]
		if cur == pkg {
			var chain []string
			for p := pkg; p != ""; p = parent[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, next := range imports[cur] {
			if _, seen := parent[next]; seen || skip(next) {
				continue
			}
			parent[next] = cur
			queue = append(queue, next)
		}
	}
	return nil
}
