package artifact_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/opencontainers/go-digest"
)

// A small layer whose extension.yaml differs from the config and whose
// bytes, corrupted on the way, do not have its digest: CheckContent and
// FetchChecked say first how the descriptors differ (the artifact's fault),
// as Fetch then CheckContent always did, not the digest mismatch (a
// registry's fault). Found by review: FetchChecked had turned the order.
func TestMismatchIsReportedBeforeADamagedSmallLayer(t *testing.T) {
	ctx := context.Background()
	defer proxy.Clear()
	repo := uniqueRepo(t)
	pad := make([]byte, 200<<10)
	rand.Read(pad)
	layer := layerOf(t, [2]string{"extension.yaml", gplYAML}, [2]string{"pad.bin", string(pad)})
	pushRaw(t, distPlain, repo, "1.0.0", canonicalConfig(t, mitYAML), layer)
	r, err := artifact.NewRepository(proxy.Host+"/"+repo, remote.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ld := digest.FromBytes(layer)
	proxy.Inject(testenv.Fault{Kind: testenv.Corrupt, Method: "GET", PathContains: ld.Encoded(), After: int64(len(layer)) - 3})
	_, err = artifact.FetchChecked(ctx, r, "1.0.0", artifact.Limits{})
	var cm *artifact.ContentMismatchError
	if !errors.As(err, &cm) || !strings.Contains(err.Error(), "differs from the config blob") {
		t.Fatalf("want the old path's ContentMismatchError (compare came before the digest check), got %v (digest mismatch: %v)", err, errors.Is(err, artifact.ErrDigestMismatch))
	}
}
