package signing_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/signing"
)

// WriteKeyPair writes a pair LoadKey and LoadSigner read back, keeps the
// private key to its owner, and never replaces a key unless asked to.
func TestWriteKeyPairRefusesToReplaceAKey(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "acme")
	pass := func(bool) ([]byte, error) { return []byte("pw"), nil }
	kp, err := signing.WriteKeyPair(prefix, pass, false)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(kp.PrivateKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v, mode %v", kp.PrivateKey, err, fi.Mode())
	}
	k, err := signing.LoadKey(context.Background(), kp.PublicKey)
	if err != nil || k.Fingerprint != kp.Fingerprint {
		t.Fatalf("the public key reads back as %+v (%v), want fingerprint %s", k, err, kp.Fingerprint)
	}
	if _, err := signing.LoadSigner(context.Background(), kp.PrivateKey, pass); err != nil {
		t.Fatalf("the private key does not load: %v", err)
	}
	if _, err := signing.WriteKeyPair(prefix, pass, false); !errors.Is(err, signing.ErrKeyExists) {
		t.Fatalf("a second write without overwrite: %v, want ErrKeyExists", err)
	}
	again, err := signing.WriteKeyPair(prefix, pass, true)
	if err != nil || again.Fingerprint == kp.Fingerprint {
		t.Fatalf("overwrite: %+v %v, want a new key", again, err)
	}
}

// LoadKeys loads every key in order and names the one that fails.
func TestLoadKeysNamesTheKeyThatFails(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "k")
	kp, err := signing.WriteKeyPair(prefix, func(bool) ([]byte, error) { return []byte("pw"), nil }, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signing.LoadKeys(context.Background(), []string{kp.PublicKey, kp.PublicKey})
	if err != nil || len(keys) != 2 || keys[0].Fingerprint != kp.Fingerprint {
		t.Fatalf("LoadKeys: %v %v", keys, err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pub")
	if _, err := signing.LoadKeys(context.Background(), []string{kp.PublicKey, missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a missing key: %v, want an error naming %s", err, missing)
	}
}
