package dev_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/testenv/dev"
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
