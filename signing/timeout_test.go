package signing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
)

// The go-containerregistry stack that signing uses gets the same timeouts
// as oras-go's: reading the evidence of an artifact on a registry that
// accepts connections and never answers fails within Timeout, unretried.
func TestSignatureReadFromRegistryThatNeverAnswersFailsWithinTimeout(t *testing.T) {
	s, err := testenv.StartSilentListener()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := signing.NewClient(remote.Options{PlainHTTP: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Collect(context.Background(), s.Host+"/acme/widget:1.0.0")
	took := time.Since(start)
	var te *remote.TimeoutError
	if !errors.As(err, &te) || te.Setting != "Timeout" || !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Fatalf("want a TimeoutError naming Timeout, got %v", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Fatalf("failed after %s, want just over 1s", took)
	}
}
