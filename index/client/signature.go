package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// ErrBadSignature is a subscription delivery whose signature does not
// match its body under the subscription's secret: forged, altered on the
// way, or signed with another secret.
var ErrBadSignature = errors.New("the delivery's signature does not match its body")

// VerifySignature checks a subscription delivery as its receiver must
// before trusting it: header is the X-Marketplace-Signature-256 value
// ("sha256=" and the hex HMAC-SHA256 of the body under the subscription's
// secret), body the exact bytes read. The comparison takes constant time.
func VerifySignature(secret string, body []byte, header string) error {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
