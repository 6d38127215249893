package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMktLinksNoKubernetesOrKMSSDK guards start-up time: every package
// linked into mkt runs its initialisation before any command does
// anything. cosign's key-loading package (pkg/signature) linked 281
// Kubernetes packages for its k8s:// keys, and sigstore's four KMS providers
// the AWS, Google Cloud, Azure and Vault SDKs; mkt reads keys with the
// lower-level packages and reaches KMS through sigstore's plugin programs
// (cmd/sigstore-kms), so none of them may come back. Nor may cosign's OCI
// and verification packages (pkg/oci, pkg/cosign), which linked rekor's
// client, go-openapi and govalidator (3 ms of init alone); signing reads
// and writes cosign's formats with go-containerregistry and sigstore.
// Nor may the server commands' packages: the index service (its stores,
// SQLite, pgx, River, goose, Prometheus, html/template) and the embedded
// registry (distribution, with gRPC and OpenTelemetry); mkt runs mkt-server
// for index serve, index token, dev up and review check (whose gitleaks
// links html/template through sprig), nor the README renderer of the
// extension page (goldmark, bluemonday).
func TestMktLinksNoKubernetesOrKMSSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "../../cmd/mkt").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"k8s.io/",
		"sigs.k8s.io/",
		"github.com/sigstore/cosign/v2/pkg/signature",
		"github.com/sigstore/sigstore/pkg/signature/kms/aws",
		"github.com/sigstore/sigstore/pkg/signature/kms/gcp",
		"github.com/sigstore/sigstore/pkg/signature/kms/azure",
		"github.com/sigstore/sigstore/pkg/signature/kms/hashivault",
		"github.com/aws/aws-sdk-go-v2/",
		"cloud.google.com/go/kms",
		"github.com/Azure/azure-sdk-for-go/",
		"github.com/hashicorp/vault/",
		"github.com/sigstore/cosign/v2/pkg/oci",
		"github.com/sigstore/rekor/",
		"github.com/go-openapi/",
		"github.com/asaskevich/govalidator",
		// The server commands' packages: mkt runs mkt-server for them.
		"github.com/connectsoft/marketplace/index/store",
		"github.com/connectsoft/marketplace/index/catalog",
		"github.com/connectsoft/marketplace/internal/cli/servercmd",
		"github.com/connectsoft/marketplace/testenv",
		"modernc.org/sqlite",
		"github.com/jackc/pgx",
		"github.com/riverqueue/river",
		"github.com/pressly/goose",
		"github.com/prometheus/",
		"html/template",
		"github.com/distribution/distribution",
		"google.golang.org/grpc",
		"go.opentelemetry.io/",
		"github.com/redis/",
		// The review pipeline: gitleaks' detector links html/template
		// (its report package, through sprig), archive readers and a
		// TOML/viper stack; mkt runs mkt-server for review check.
		"github.com/connectsoft/marketplace/review",
		"github.com/zricethezav/gitleaks/",
		"github.com/CycloneDX/",
		// The extension page's README renderer and sanitiser (index,
		// issue 14): the index service's alone.
		"github.com/yuin/goldmark",
		"github.com/microcosm-cc/bluemonday",
	}
	var found []string
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/sigstore/cosign/v2/pkg/cosign" || pkg == "github.com/connectsoft/marketplace/index" {
			found = append(found, pkg)
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				found = append(found, pkg)
				break
			}
		}
	}
	if len(found) > 0 {
		t.Errorf("mkt links %d packages it must not (start-up cost; see docs/performance.md): %s", len(found), strings.Join(found[:min(len(found), 10)], ", "))
	}
}
