package artifact_test

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

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
	open := func(o artifact.RemoteOptions) int64 {
		dialed.Store(0)
		for i := 0; i < 20; i++ {
			repo, err := artifact.NewRepository(fmt.Sprintf("%s/shared/repo%d", distPlain.Host, i%4), o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Resolve(ctx, "1.0.0"); !artifact.IsNotFound(err) {
				t.Fatalf("resolve in an empty repository: %v", err)
			}
		}
		return dialed.Load()
	}
	if n := open(remoteOptions(distPlain)); n < 20 {
		t.Fatalf("without Shared, 20 repositories dialed %d connections: the test cannot tell", n)
	}
	shared, err := remoteOptions(distPlain).Shared()
	if err != nil {
		t.Fatal(err)
	}
	if n := open(shared); n > 1 {
		t.Fatalf("with Shared, 20 repositories dialed %d connections, want 1", n)
	}
	if c, _ := shared.AuthClient(); c != shared.Client {
		t.Fatal("AuthClient of Shared options is not the shared client")
	}
}
