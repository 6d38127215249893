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
	// cosign's OCI packages, which signing uses to read and write
	// signatures, link its transparency-log client (go-openapi, gRPC),
	// whose middleware imports html/template. That one route is known and
	// logged; any other, from our packages or another dependency, fails.
	cosign := func(p string) bool { return strings.HasPrefix(p, "github.com/sigstore/cosign/") }
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
		if pkg == "html/template" {
			if other := importChain(imports, root, pkg, cosign); other != nil {
				t.Errorf("the Go API links %s other than through cosign: %s", pkg, strings.Join(other, " → "))
				continue
			}
			t.Logf("html/template is linked only through cosign: %s", strings.Join(chain, " → "))
			continue
		}
		t.Errorf("the Go API links %s: %s", pkg, strings.Join(chain, " → "))
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
