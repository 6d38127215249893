package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"oras.land/oras-go/v2/errdef"
	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

var plain, tlsAuth *testenv.Registry

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.Distribution(&plain, testenv.DistributionOptions{}),
		testenv.Distribution(&tlsAuth, testenv.DistributionOptions{TLS: true, Username: "publisher", Password: "s3cret-pw"}),
	))
}

// noConfig is a docker config that does not exist: no credentials.
func noConfig(t *testing.T) string { return filepath.Join(t.TempDir(), "config.json") }

func open(t *testing.T, ref string, o remote.Options) *orasremote.Repository {
	t.Helper()
	repo, err := orasremote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	if repo.Client, err = o.AuthClient(); err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = o.PlainHTTP
	return repo
}

// A service that opens many repositories with Shared options keeps one
// client: connections are reused instead of dialed per repository.
func TestSharedOptionsReuseConnections(t *testing.T) {
	var dialed atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused {
				dialed.Add(1)
			}
		},
	})
	resolve := func(o remote.Options) int64 {
		dialed.Store(0)
		for i := 0; i < 20; i++ {
			repo := open(t, fmt.Sprintf("%s/shared/repo%d", plain.Host, i%4), o)
			if _, err := repo.Resolve(ctx, "1.0.0"); !errors.Is(err, errdef.ErrNotFound) {
				t.Fatalf("resolve in an empty repository: %v", err)
			}
		}
		return dialed.Load()
	}
	o := remote.Options{PlainHTTP: true, RegistryConfig: noConfig(t)}
	if n := resolve(o); n < 20 {
		t.Fatalf("without Shared, 20 repositories dialed %d connections: the test cannot tell", n)
	}
	shared, err := o.Shared()
	if err != nil {
		t.Fatal(err)
	}
	if n := resolve(shared); n > 1 {
		t.Fatalf("with Shared, 20 repositories dialed %d connections, want 1", n)
	}
	if c, _ := shared.AuthClient(); c != shared.Client {
		t.Fatal("AuthClient of Shared options is not the shared client")
	}
}

// The Credential given in Options is what reaches the registry, over TLS
// trusted through the CA file alone (or not verified, with Insecure);
// without it the registry refuses.
func TestCredentialAndCAFileReachTheRegistry(t *testing.T) {
	ctx := context.Background()
	ref := tlsAuth.Ref("creds/widget")
	anonymous := remote.Options{CAFile: tlsAuth.CAFile, RegistryConfig: noConfig(t)}
	if _, err := open(t, ref, anonymous).Resolve(ctx, "1.0.0"); !errors.Is(err, auth.ErrBasicCredentialNotFound) {
		t.Fatalf("without credentials: %v, want the registry to ask for them", err)
	}
	cred := auth.StaticCredential(tlsAuth.Host, auth.Credential{Username: tlsAuth.Username, Password: tlsAuth.Password})
	withCred := anonymous
	withCred.Credential = cred
	if _, err := open(t, ref, withCred).Resolve(ctx, "1.0.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("with credentials: %v, want not found", err)
	}
	if _, err := open(t, ref, remote.Options{Credential: cred}).Resolve(ctx, "1.0.0"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA file: %v, want a certificate error", err)
	}
	if _, err := open(t, ref, remote.Options{Credential: cred, Insecure: true}).Resolve(ctx, "1.0.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("insecure: %v, want not found", err)
	}
}

// Over HTTPS a silent registry hangs the TLS handshake: ConnectTimeout
// bounds it, whatever Timeout says, and a timeout is not transient.
func TestTLSHandshakeWithSilentRegistryFailsWithinConnectTimeout(t *testing.T) {
	s, err := testenv.StartSilentListener()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hc, err := remote.Options{ConnectTimeout: time.Second, Timeout: time.Minute}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = hc.Get("https://" + s.Host + "/v2/")
	took := time.Since(start)
	var te *remote.TimeoutError
	if !errors.As(err, &te) || te.Setting != "ConnectTimeout" || te.Limit != time.Second {
		t.Fatalf("want a TimeoutError naming ConnectTimeout=1s, got %v", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Fatalf("failed after %s, want just over 1s", took)
	}
	if remote.IsTransient(err) {
		t.Fatal("a timeout is reported as transient, so callers would retry it")
	}
}
