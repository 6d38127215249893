package signing_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/signing"
)

func pw(p string) signing.PassFunc { return func(bool) ([]byte, error) { return []byte(p), nil } }

// TestKeyErrorsSayWhatIsWrongAndWhatToDo: the messages mkt prints for the
// usual key mistakes, instead of cosign's "decrypt: encrypted: decryption
// failed" and "unsupported pem type: PUBLIC KEY".
func TestKeyErrorsSayWhatIsWrongAndWhatToDo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, key := keyPair(t, dir, "k")
	priv, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")

	cases := []struct {
		name     string
		load     func() error
		sentinel error
		want     []string
	}{
		{"wrong password", func() error { _, err := signing.LoadSigner(ctx, priv, pw("not-it")); return err },
			signing.ErrWrongPassword, []string{"wrong password", "COSIGN_PASSWORD"}},
		{"public key given to sign", func() error { _, err := signing.LoadSigner(ctx, pub, pw("pw")); return err },
			signing.ErrNotPrivateKey, []string{"this is a public key", "signing needs the private key"}},
		{"private key given to verify", func() error { _, err := signing.LoadKey(ctx, priv); return err },
			signing.ErrNotPublicKey, []string{"verification needs the public key"}},
		{"unknown KMS", func() error { _, err := signing.LoadKey(ctx, "nosuchkms://key"); return err },
			signing.ErrUnknownKMS, []string{"nosuchkms://", "sigstore-kms-nosuchkms"}},
	}
	for _, tc := range cases {
		err := tc.load()
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.sentinel)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
		for _, leak := range []string{"decryption failed", "unsupported pem type"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: %q leaks cosign's %q", tc.name, err, leak)
			}
		}
	}
	// The right password, and the public key as a PEM string, still load.
	s, err := signing.LoadSigner(ctx, priv, pw("pw"))
	if err != nil || s.Fingerprint != key.Fingerprint {
		t.Fatalf("right password: %v", err)
	}
	pem, _ := os.ReadFile(pub)
	if k, err := signing.LoadKey(ctx, string(pem)); err != nil || k.Fingerprint != key.Fingerprint {
		t.Fatalf("inline PEM: %v", err)
	}
	t.Setenv("MKT_TEST_PUB", string(pem))
	if k, err := signing.LoadKey(ctx, "env://MKT_TEST_PUB"); err != nil || k.Fingerprint != key.Fingerprint {
		t.Fatalf("env:// key: %v", err)
	}
}

// TestKMSReferencesReachSigstorePluginPrograms: mkt links no KMS provider;
// a KMS reference goes to sigstore's plugin program sigstore-kms-<scheme>
// on PATH, here cmd/sigstore-kms installed as sigstore-kms-hashivault,
// which answers with sigstore's own Vault provider (its error, with no
// Vault to reach, proves the request went through).
func TestKMSReferencesReachSigstorePluginPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/sigstore-kms")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "sigstore-kms-hashivault"), "../cmd/sigstore-kms")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("VAULT_ADDR", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := signing.LoadKey(ctx, "hashivault://mkt-test-key")
	if err == nil || errors.Is(err, signing.ErrUnknownKMS) || !strings.Contains(err.Error(), "VAULT_ADDR") {
		t.Fatalf("hashivault:// through the plugin: %v", err)
	}
}

// TestPredicateTimeErrorsNameTheField: a date that is not RFC 3339 is
// reported with its field and the format wanted, not Go's parse error.
func TestPredicateTimeErrorsNameTheField(t *testing.T) {
	_, err := signing.NormalizePredicate(signing.TermsV1, []byte(`{"license":"MIT","pricing":{"model":"free"},"effectiveDate":"2026-13-01"}`), time.Now())
	var pe *signing.PredicateError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), `effectiveDate "2026-13-01" is not a date-time: want RFC 3339, such as 2026-01-01T00:00:00Z`) {
		t.Fatalf("bad effectiveDate: %v", err)
	}
	if strings.Contains(err.Error(), "parsing time") {
		t.Fatalf("leaks Go's time-parse error: %v", err)
	}
}

// TestValidatePredicateIsStrict: a signed predicate must be complete as
// signed (no time filled in) and within its schema; other types pass.
func TestValidatePredicateIsStrict(t *testing.T) {
	cases := []struct {
		typ, raw, want string
	}{
		{signing.ReviewV1, `{"reviewer":"r","result":"approved","level":"public","time":"2026-01-01T00:00:00Z"}`, ""},
		{signing.ReviewV1, `{"reviewer":"r","result":"approved","level":"public"}`, "time is required"},
		{signing.ReviewV1, `{"reviewer":"r","result":"maybe","level":"public","time":"2026-01-01T00:00:00Z"}`, `result "maybe": want approved, rejected or revoked`},
		{signing.TermsV1, `{"license":"NOT-A-LICENCE","pricing":{"model":"free"},"effectiveDate":"2026-01-01T00:00:00Z","time":"2026-01-01T00:00:00Z"}`, "not an SPDX expression"},
		{signing.LifecycleV1, `{"status":"yanked","reason":"x","time":"yesterday"}`, "time"},
		{"https://example.com/other/v1", `{"anything":1}`, ""},
	}
	for _, tc := range cases {
		err := signing.ValidatePredicate(tc.typ, []byte(tc.raw))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", signing.ShortName(tc.typ), tc.raw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %s: %v, want %q", signing.ShortName(tc.typ), tc.raw, err, tc.want)
		}
	}
}
