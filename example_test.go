package marketplace_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
)

// Factory installs the extensions it needs, verified against a policy.
// The example publishes and signs one first, on a throwaway registry.
func ExampleInstall() {
	ctx := context.Background()
	reg, _ := testenv.StartDistribution(testenv.DistributionOptions{})
	defer reg.Close()
	work, _ := os.MkdirTemp("", "factory-*")
	defer os.RemoveAll(work)
	ro := remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(work, "config.json")}

	// The publisher's side: a key pair, a push, a signature.
	pass := func(bool) ([]byte, error) { return []byte("secret"), nil }
	priv, pub, _ := signing.GenerateKeyPair(pass)
	os.WriteFile(filepath.Join(work, "acme.key"), priv, 0o600)
	os.WriteFile(filepath.Join(work, "acme.pub"), pub, 0o644)
	pkg, _ := artifact.Pack(ctx, "examples/http-module", artifact.PackOptions{})
	defer pkg.Close()
	repo, _ := artifact.NewRepository(reg.Ref("acme/http"), ro)
	artifact.Push(ctx, repo, "", pkg, artifact.PushOptions{})
	signer, _ := signing.LoadSigner(ctx, filepath.Join(work, "acme.key"), pass)
	client, _ := signing.NewClient(ro)
	client.Sign(ctx, reg.Ref("acme/http:1.2.3"), signer, signing.WriteOptions{})

	// Factory's side: a policy, then Install.
	os.WriteFile(filepath.Join(work, "policy.yaml"), []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots:
  - {name: acme, keys: [acme.pub]}
rules:
  - name: acme
    match: {repositories: ["**/acme/**"]}
    signatures: {trustRoots: [acme]}
    compatibility: required
`), 0o644)
	p, err := policy.Load(ctx, filepath.Join(work, "policy.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := marketplace.Install(ctx, []resolve.Requirement{{Name: "acme/http", Constraint: "^1.2.0"}}, marketplace.Options{
		Registry:       reg.Host,
		Remote:         ro,
		Policy:         p,
		FactoryVersion: "2.4.0",
		Dir:            filepath.Join(work, "extensions"),
		Lockfile:       filepath.Join(work, "extensions.lock"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range res.Lock.Extensions {
		_, err := os.Stat(filepath.Join(work, "extensions", e.Name, "extension.yaml"))
		fmt.Println(e.Name, e.Version, "installed:", err == nil)
	}
	// Output: acme/http 1.2.3 installed: true
}
