package resolve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var reg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&reg, testenv.DistributionOptions{})))
}

// world is a registry publisher with keys and a directory for a policy.
type world struct {
	t    *testing.T
	dir  string
	pub  *fixture.Publisher
	keys map[string]*signing.Signer
}

func newWorld(t *testing.T, keyNames ...string) *world {
	w := &world{t: t, dir: t.TempDir(), pub: fixture.NewPublisher(t, reg), keys: map[string]*signing.Signer{}}
	for _, k := range keyNames {
		s, _, _ := fixture.KeyPair(t, w.dir, k)
		w.keys[k] = s
	}
	return w
}

// mustPolicy writes body (with a header) into the world's directory and loads it.
func (w *world) mustPolicy(body string) *policy.Policy {
	w.t.Helper()
	path := filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(path, []byte("apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\n"+body), 0o644)
	p, err := policy.Load(context.Background(), path)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

const roots = `trustRoots:
  - name: publishers
    keys: [p1.pub, p2.pub, p3.pub]
  - name: review
    keys: [rev.pub]
`

func mustExt(name, version, deps string) *artifact.Extension {
	y := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: " + name + "\n  version: " + version +
		"\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n"
	if deps != "" {
		y += "  dependencies:\n" + deps
	}
	ext, err := artifact.ParseExtension(strings.NewReader(y), "bench.yaml")
	if err != nil {
		panic(err)
	}
	return ext
}
