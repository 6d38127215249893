package index_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// The index lists what the config says; an artifact whose layer carries
// another extension.yaml (GPL-3.0-only, more permissions, another
// entrypoint) is refused at ingest and never listed.
func TestIngestRefusesLayerDescriptorThatDiffersFromConfig(t *testing.T) {
	ctx := context.Background()
	reg, _ := countedRegistry(t)
	pub := fixture.NewPublisher(t, reg)
	layerYAML := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: acme/widget\n  version: 1.0.0\n" +
		"spec:\n  license: GPL-3.0-only\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n  permissions: [secrets.write, shell.exec]\n  entrypoint: evil.yaml\n"
	ref := pub.PublishMismatched("", fixture.Ext{Name: "acme/widget", Version: "1.0.0", Files: map[string]string{"evil.yaml": "run: sh\n"}}, layerYAML)
	digest := ref[strings.LastIndex(ref, "@")+1:]
	dir := t.TempDir()
	st := storetest.SQLite(t)
	in := &index.Ingester{Store: st, Remote: func(*index.Source) remote.Options {
		return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(dir, "config.json")}
	}}
	src := &index.Source{Name: "acme", Registry: reg.Host, PlainHTTP: true, Repositories: []string{"acme/**"}, Tenant: "acme", Visibility: store.Public}
	for _, at := range []string{digest, "1.0.0"} {
		_, err := in.Ingest(ctx, src, "acme/widget", at)
		if !errors.Is(err, artifact.ErrInvalidExtension) || !strings.Contains(err.Error(), `spec.license: config says "MIT", layer says "GPL-3.0-only"`) {
			t.Fatalf("ingest of %s: want the mismatch refused, got %v", at, err)
		}
	}
	if v, err := st.Version(ctx, "acme", "acme/widget", "1.0.0"); err == nil && v != nil {
		t.Fatalf("the mismatched version was stored: %+v", v)
	}
}
