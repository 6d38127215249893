package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// FuzzVerifySignature: whatever header a sender makes up, only the
// signature of the body under the secret verifies, and nothing panics.
func FuzzVerifySignature(f *testing.F) {
	f.Add("sha256=00", []byte(`{"id":"1"}`))
	f.Add(sign("secret-0123456789", []byte(`{"id":"1"}`)), []byte(`{"id":"1"}`))
	f.Add("sha256=zz", []byte{})
	f.Add("", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := VerifySignature("secret-0123456789", body, header)
		// Hex digits in either case are the same signature.
		rest, ok := strings.CutPrefix(header, "sha256=")
		genuine := ok && strings.EqualFold(rest, strings.TrimPrefix(sign("secret-0123456789", body), "sha256="))
		if (err == nil) != genuine {
			t.Fatalf("header %q over %q: %v", header, body, err)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error %v is not ErrBadSignature", err)
		}
	})
}
