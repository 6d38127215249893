package signing

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadKeys opens every public key refs names (see LoadKey), in order. It
// is the one loop over --key flags that inspect, verify and pull share; the
// first key that does not load fails it, named in the error.
func LoadKeys(ctx context.Context, refs []string) ([]*Key, error) {
	keys := make([]*Key, 0, len(refs))
	for _, r := range refs {
		k, err := LoadKey(ctx, r)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// KeyPair names the files WriteKeyPair wrote.
type KeyPair struct {
	// PrivateKey is PREFIX.key: cosign's encrypted format.
	PrivateKey string `json:"privateKey"`
	// PublicKey is PREFIX.pub: PEM, to share.
	PublicKey string `json:"publicKey"`
	// Fingerprint names the key (see Fingerprint).
	Fingerprint string `json:"fingerprint"`
}

// ErrKeyExists is returned by WriteKeyPair when a file it would write
// exists and overwriting was not asked for.
var ErrKeyExists = errors.New("key file exists")

// WriteKeyPair generates a key pair (GenerateKeyPair) and writes it to
// PREFIX.key (mode 0600) and PREFIX.pub, as `cosign generate-key-pair`
// does. It refuses to replace either file unless overwrite, so a second
// run cannot destroy the only copy of a signing key.
func WriteKeyPair(prefix string, pass PassFunc, overwrite bool) (*KeyPair, error) {
	kp := &KeyPair{PrivateKey: prefix + ".key", PublicKey: prefix + ".pub"}
	if !overwrite {
		for _, p := range []string{kp.PrivateKey, kp.PublicKey} {
			if _, err := os.Stat(p); err == nil {
				return nil, fmt.Errorf("%s: %w: use --force to overwrite it", p, ErrKeyExists)
			}
		}
	}
	privPEM, pubPEM, err := GenerateKeyPair(pass)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(kp.PrivateKey, privPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write the private key: %w", err)
	}
	if err := os.WriteFile(kp.PublicKey, pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write the public key: %w", err)
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		return nil, errors.New("read back the public key: no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read back the public key: %w", err)
	}
	if kp.Fingerprint, err = Fingerprint(pub); err != nil {
		return nil, err
	}
	return kp, nil
}
