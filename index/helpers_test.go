package index_test

import (
	"context"
	"testing"

	"github.com/connectsoft/marketplace/signing"
)

func loadSigner(t *testing.T, path string) (*signing.Signer, error) {
	t.Helper()
	s, err := signing.LoadSigner(context.Background(), path, func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}
