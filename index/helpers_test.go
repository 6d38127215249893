package index_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
)

func loadSigner(t *testing.T, path string) (*signing.Signer, error) {
	t.Helper()
	s, err := signing.LoadSigner(context.Background(), path, func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}

// notifyingRegistry starts an in-process registry that notifies an index
// yet to serve on ln (at base), with the webhook secret: the path evidence
// arrives by in production. The registry closes with the test.
func notifyingRegistry(t *testing.T) (ln net.Listener, base string, reg *testenv.Registry) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + ln.Addr().String()
	reg, err = testenv.StartDistribution(testenv.DistributionOptions{
		NotifyURL: base + "/api/v1/events/registry", NotifyHeaders: http.Header{"Authorization": {"Bearer " + secret}},
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return ln, base, reg
}

// startRegistry starts an in-process CNCF distribution registry with o
// and closes it when the test ends.
func startRegistry(t testing.TB, o testenv.DistributionOptions) *testenv.Registry {
	t.Helper()
	reg, err := testenv.StartDistribution(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}
