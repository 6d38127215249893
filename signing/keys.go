package signing

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	sigkeys "github.com/sigstore/cosign/v2/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PassFunc supplies the password of an encrypted private key; confirm is
// true when a new key is being created.
type PassFunc = cosign.PassFunc

// EnvPassword reads COSIGN_PASSWORD, as stock cosign does. An unset
// variable is an error, so that a forgotten password never silently
// becomes an empty one; set it to "" for keys without one.
func EnvPassword(bool) ([]byte, error) {
	pw, ok := os.LookupEnv("COSIGN_PASSWORD")
	if !ok {
		return nil, errors.New("COSIGN_PASSWORD is not set (set it to the key's password, or to \"\" for a key without one)")
	}
	return []byte(pw), nil
}

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's formats: the
// private key encrypted with the password (cosign.key), the public key as
// PEM (cosign.pub).
func GenerateKeyPair(pass PassFunc) (privatePEM, publicPEM []byte, err error) {
	keys, err := cosign.GenerateKeyPair(pass)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return keys.PrivateBytes, keys.PublicBytes, nil
}

// Signer signs with one key and knows that key's fingerprint.
type Signer struct {
	signature.SignerVerifier
	Fingerprint string
}

// LoadSigner opens a private key: a cosign.key file, or any KMS reference
// sigstore supports (awskms://, gcpkms://, azurekms://, hashivault://)
// when its provider is linked into the program.
func LoadSigner(ctx context.Context, ref string, pass PassFunc) (*Signer, error) {
	sv, err := sigkeys.SignerVerifierFromKeyRef(ctx, ref, pass, nil)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", ref, err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", ref, err)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &Signer{SignerVerifier: sv, Fingerprint: fp}, nil
}

// Key is a trusted public key.
type Key struct {
	// Ref is where the key came from (file, KMS reference), for messages.
	Ref         string
	Fingerprint string
	Verifier    signature.Verifier
}

// LoadKey opens a public key: a PEM file (cosign.pub), a PEM string, or a
// KMS reference.
func LoadKey(ctx context.Context, ref string) (*Key, error) {
	v, err := sigkeys.PublicKeyFromKeyRef(ctx, ref)
	if err != nil {
		if _, statErr := os.Stat(ref); errors.Is(statErr, os.ErrNotExist) {
			if v2, err2 := sigkeys.LoadPublicKeyRaw([]byte(ref), crypto.SHA256); err2 == nil {
				v, err = v2, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", ref, err)
	}
	pub, err := v.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", ref, err)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &Key{Ref: ref, Fingerprint: fp, Verifier: v}, nil
}

// Fingerprint names a public key: the hex SHA-256 of its DER
// SubjectPublicKeyInfo, the same for a key whatever file or KMS holds it.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
