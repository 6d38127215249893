package review_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/review"
	"github.com/connectsoft/marketplace/testenv"
)

var reg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&reg, testenv.DistributionOptions{})))
}

// file is one file of a test extension.
type file struct {
	content string
	mode    os.FileMode // 0 means 0644
}

// descriptor is a valid extension.yaml with the spec lines given.
func descriptor(name, spec string) string {
	return "apiVersion: marketplace.connectsoft.io/v1\nkind: Connector\nmetadata:\n  name: " + name +
		"\n  version: 1.0.0\nspec:\n  license: Apache-2.0\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n" + spec
}

// writeExt writes an extension directory: extension.yaml and files.
func writeExt(t testing.TB, desc string, files map[string]file) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, f := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(full, []byte(f.content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// cleanFiles is what a well-behaved connector ships.
func cleanFiles() map[string]file {
	return map[string]file{
		"connector/main.yaml": {content: "endpoint: https://api.example.com\nauth: oauth2\n"},
		"README.md":           {content: "# CRM connector\n\nSyncs accounts. Set the token in Factory's secret store.\n"},
		"go.mod":              {content: "module example.com/crm\n\ngo 1.22\n\nrequire golang.org/x/text v0.14.0\n"},
	}
}

// pushDir packs dir and pushes it to the test registry as repo; it returns
// repository@digest.
func pushDir(t testing.TB, dir, repo string) string {
	t.Helper()
	ctx := context.Background()
	pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	r, err := artifact.NewRepository(reg.Ref(repo), remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, r, "", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return reg.Ref(repo) + "@" + pkg.Manifest.Digest.String()
}

func remoteOpts(t testing.TB) remote.Options {
	return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
}

// privateKeyPEM is a freshly made EC private key, as a publisher might
// leave one in a directory: generated here so no key sits in the repository.
func privateKeyPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// awsKeyID is a real-looking AWS access key id (not AWS's documented
// example, which gitleaks rightly allows), assembled so that the
// repository holds no literal one.
func awsKeyID() string { return "AKI" + "A" + "Z7VRSQ5TJN2XKQ4P" }

func check(t testing.TB, dir string, o review.Options) *review.Report {
	t.Helper()
	rep, err := review.CheckDir(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// findings lists the findings of a check at or above sev.
func findings(rep *review.Report, name string, sev review.Severity) []review.Finding {
	var out []review.Finding
	if c := rep.Check(name); c != nil {
		for _, f := range c.Findings {
			if f.Severity.AtLeast(sev) {
				out = append(out, f)
			}
		}
	}
	return out
}

func mustRejectFor(t testing.TB, rep *review.Report, name string) []review.Finding {
	t.Helper()
	if rep.Approved() {
		t.Fatalf("approved; want rejected for %s:\n%s", name, text(rep))
	}
	c := rep.Check(name)
	if c == nil || c.Status != review.Failed {
		t.Fatalf("check %s is %+v, want failed:\n%s", name, c, text(rep))
	}
	fs := findings(rep, name, rep.BlockAt)
	if len(fs) == 0 {
		t.Fatalf("check %s has no blocking finding:\n%s", name, text(rep))
	}
	return fs
}

func text(rep *review.Report) string {
	var b strings.Builder
	rep.WriteText(&b)
	return b.String()
}

func loadPolicy(t testing.TB, path string) *policy.Policy {
	t.Helper()
	p, err := policy.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
