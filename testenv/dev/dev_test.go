package dev_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/dev"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Up returns once both services listen and the address files hold their
// addresses; Wait stops both when the context ends.
func TestUpServesUntilTheContextEnds(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := dev.Up(ctx, dev.Options{DevDir: filepath.Join(dir, "dev"), AddrFile: filepath.Join(dir, "addr"), IndexAddrFile: filepath.Join(dir, "index")})
	if err != nil {
		t.Fatal(err)
	}
	if code := get("http://" + env.Registry + "/v2/"); code != http.StatusOK {
		t.Fatalf("the registry answers /v2/ with %d", code)
	}
	if code := get(env.Index + "/healthz"); code != http.StatusOK {
		t.Fatalf("the index answers /healthz with %d", code)
	}
	for file, want := range map[string]string{"addr": env.Registry, "index": env.Index} {
		if b, _ := os.ReadFile(filepath.Join(dir, file)); strings.TrimSpace(string(b)) != want {
			t.Errorf("%s holds %q, want %q", file, b, want)
		}
	}
	for _, f := range []string{env.Key, env.PublicKey, env.Policy} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the dev trust lacks %s: %v", f, err)
		}
	}
	cancel()
	if err := env.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if code := get("http://" + env.Registry + "/v2/"); code != 0 {
		t.Fatalf("the registry still answers (%d) after Wait", code)
	}
}

// A failed start leaves nothing listening: the index's port is free again.
func TestUpFailsWholeWhenTheRegistryCannotListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := dev.Up(ctx, dev.Options{NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	indexAddr := ln.Addr().String()
	ln.Close()
	if _, err := dev.Up(ctx, dev.Options{Listen: first.Registry, IndexListen: indexAddr, DevDir: t.TempDir()}); err == nil {
		t.Fatal("a second dev environment on the same registry address started")
	}
	ln, err = net.Listen("tcp", indexAddr)
	if err != nil {
		t.Fatalf("the failed start kept the index's address: %v", err)
	}
	ln.Close()
	cancel()
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
}

// freeAddr is an address of 127.0.0.1 that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeStagedConfig writes an index config whose one source, tenant acme,
// reads registry in the public stage, whose policy wants acme's signature.
func writeStagedConfig(t *testing.T, dir, registry string) string {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "public-policy.yaml"), []byte(`apiVersion: marketplace.connectsoft.io/v1
kind: Policy
trustRoots: [{name: acme, keys: [acme.pub]}]
rules: [{name: all, match: {repositories: ["**"]}, signatures: {trustRoots: [acme]}}]
`), 0o644)
	cfg := filepath.Join(dir, "index.yaml")
	os.WriteFile(cfg, []byte(`store: sqlite://`+filepath.Join(dir, "index.db")+`
operator: connectsoft
stages: [{name: public, policy: public-policy.yaml}]
sources:
  - {name: acme, registry: "`+registry+`", plainHTTP: true, repositories: ["acme/**"], tenant: acme, visibility: public, stage: public}
`), 0o644)
	return cfg
}

// With Config the index runs that config, not the dev one: its stage
// quarantines a version until its policy (acme's signature, not the dev
// key's) passes, in its tenant, and no dev key is made.
func TestUpRunsAnIndexConfig(t *testing.T) {
	dir := t.TempDir()
	acme, _, _ := fixture.KeyPair(t, dir, "acme")
	reg := freeAddr(t)
	cfg := writeStagedConfig(t, dir, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := dev.Up(ctx, dev.Options{Listen: reg, Config: cfg, DevDir: filepath.Join(dir, "dev")})
	if err != nil {
		t.Fatal(err)
	}
	if env.Config != cfg || env.Key != "" || env.Policy != "" {
		t.Fatalf("env: config %q key %q policy %q", env.Config, env.Key, env.Policy)
	}
	if _, err := os.Stat(filepath.Join(dir, "dev")); err == nil {
		t.Fatal("a dev key directory was made for an index config")
	}
	pub := fixture.NewPublisher(t, &testenv.Registry{Host: env.Registry, PlainHTTP: true})
	ref := pub.Publish("acme", fixture.Ext{Name: "acme/widget", Version: "1.0.0"})
	pub.Sign(ref, acme)
	details := func() (int, string) {
		resp, err := http.Get(env.Index + "/api/v1/extensions/acme/widget")
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := details()
		if code == http.StatusOK {
			if !strings.Contains(body, `"tenant":"acme"`) || !strings.Contains(body, `"stage":"public"`) || !strings.Contains(body, `"quarantined":false`) {
				t.Fatalf("the released version is not the config's: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's signed version was not released by the config's stage policy: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := env.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A config none of whose sources reads the embedded registry would ingest
// nothing: it is refused, and nothing is left listening.
func TestUpRefusesAConfigThatReadsAnotherRegistry(t *testing.T) {
	dir := t.TempDir()
	fixture.KeyPair(t, dir, "acme")
	reg, idx := freeAddr(t), freeAddr(t)
	cfg := writeStagedConfig(t, dir, "registry.example.com")
	_, err := dev.Up(context.Background(), dev.Options{Listen: reg, IndexListen: idx, Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "no source reads the embedded registry "+reg) {
		t.Fatalf("want the config refused for reading another registry, got %v", err)
	}
	for _, a := range []string{reg, idx} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("the refused start kept %s: %v", a, err)
		}
		ln.Close()
	}
	if _, err := dev.Up(context.Background(), dev.Options{Config: cfg, NoIndex: true}); err == nil || !strings.Contains(err.Error(), "--no-index") {
		t.Fatalf("an index config with --no-index: %v", err)
	}
}
