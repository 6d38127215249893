package resolve_test

import (
	"os"
	"testing"

	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var reg *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&reg, testenv.DistributionOptions{})))
}

// world is fixture's policy world.
type world struct{ *fixture.PolicyWorld }

func newWorld(t *testing.T, keyNames ...string) *world {
	return &world{fixture.NewPolicyWorld(t, reg, keyNames...)}
}

const roots = `trustRoots:
  - name: publishers
    keys: [p1.pub, p2.pub, p3.pub]
  - name: review
    keys: [rev.pub]
`
