package marketplace_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/testenv"
)

// connections counts the client connections proxy served and how many
// carried requests of both OCI stacks (go-containerregistry's user agent
// names it; oras-go's is ours alone).
func connections(proxy *testenv.FaultProxy) (total, both int) {
	for _, uas := range proxy.Connections() {
		var ggcr, oras bool
		for _, ua := range uas {
			if strings.Contains(ua, "go-containerregistry") {
				ggcr = true
			} else {
				oras = true
			}
		}
		if ggcr && oras {
			both++
		}
	}
	return len(proxy.Connections()), both
}

// Verify reads an artifact, its evidence and its content through one
// connection pool: both stacks share the connections. Before, each opened
// repository and the signing client dialed their own.
func TestVerifySharesOneConnectionPool(t *testing.T) {
	ctx := context.Background()
	pub, refs, pol := scenario(t, "pool")
	p, err := policy.Load(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testenv.StartFaultProxy(reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ref := strings.Replace(refs["acme/lib@1.1.0"], reg.Host, proxy.Host, 1)
	if d, err := marketplace.Verify(ctx, ref, p, "2.4.0", pub.Remote); err != nil || d == nil {
		t.Fatalf("verify: %v", err)
	}
	total, both := connections(proxy)
	t.Logf("verify: %d connections, %d carrying both stacks", total, both)
	if both == 0 {
		t.Fatalf("verify: none of %d connections carried both stacks' requests", total)
	}
}
