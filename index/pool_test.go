package index_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// The index keeps one connection pool per source: the manifest and layer
// reads (oras-go) and the signature reads (go-containerregistry) of an
// ingest go over the same connections. Before, signing built a transport
// of its own, so no connection ever carried both stacks' requests and every
// source held two pools.
func TestIngestKeepsOneConnectionPoolPerSource(t *testing.T) {
	ctx := context.Background()
	reg, proxy := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	dir := t.TempDir()
	signer, _, _ := fixture.KeyPair(t, dir, "acme")
	const n = 5
	var digests []string
	for i := range n {
		ref := pub.Publish("", fixture.Ext{Name: fmt.Sprintf("acme/pool%d", i), Version: "1.0.0"})
		pub.Sign(ref, signer)
		digests = append(digests, ref[strings.LastIndex(ref, "@")+1:])
	}
	in := &index.Ingester{Store: storetest.SQLite(t), Policy: trustPolicy(t, dir, "acme.pub"), Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}
	src := &index.Source{Name: "acme", Registry: proxy.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	proxy.Clear()
	for i, d := range digests {
		got, err := in.Ingest(ctx, src, fmt.Sprintf("acme/pool%d", i), d)
		if err != nil || !got.Version.Signed {
			t.Fatalf("ingest %d: %+v %v", i, got, err)
		}
	}
	conns := proxy.Connections()
	var both, ggcrOnly, orasOnly int
	for _, uas := range conns {
		var ggcr, oras bool
		for _, ua := range uas {
			if strings.Contains(ua, "go-containerregistry") {
				ggcr = true
			} else {
				oras = true
			}
		}
		switch {
		case ggcr && oras:
			both++
		case ggcr:
			ggcrOnly++
		default:
			orasOnly++
		}
	}
	t.Logf("%d signed ingests: %d connections (%d used by both stacks, %d by signing only, %d by artifact only)", n, len(conns), both, ggcrOnly, orasOnly)
	if both == 0 {
		t.Fatalf("no connection carried both stacks' requests (%d signing-only, %d artifact-only): two pools for one source", ggcrOnly, orasOnly)
	}
}
