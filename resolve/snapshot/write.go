package snapshot

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Default expiries: the timestamp is re-signed often (a day), the catalog
// it vouches for lives a week, the root a year.
const (
	DefaultRootExpiry      = 365 * 24 * time.Hour
	DefaultTargetsExpiry   = 7 * 24 * time.Hour
	DefaultSnapshotExpiry  = 7 * 24 * time.Hour
	DefaultTimestampExpiry = 24 * time.Hour
)

// Expiry says how long each role's metadata is valid from the time it is
// written; zero means the default.
type Expiry struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// WithDefaults fills the zero durations with the defaults.
func (e Expiry) WithDefaults() Expiry {
	or := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d
	}
	return Expiry{or(e.Root, DefaultRootExpiry), or(e.Targets, DefaultTargetsExpiry),
		or(e.Snapshot, DefaultSnapshotExpiry), or(e.Timestamp, DefaultTimestampExpiry)}
}

// State is what a writer remembers between snapshots of one scope: the
// last version written (every snapshot takes the next, so a writer cannot
// roll a client back either) and every root signed so far, oldest first
// (root N at index N-1), which clients walk to the newest.
type State struct {
	Version int64    `json:"version"`
	Roots   [][]byte `json:"roots"`
}

// Files are a snapshot's TUF metadata and its catalog, by file name:
// N.root.json for every root version, timestamp.json, snapshot.json,
// targets.json and CatalogTarget.
type Files map[string][]byte

// Role file names.
const (
	TimestampFile = "timestamp.json"
	SnapshotFile  = "snapshot.json"
	TargetsFile   = "targets.json"
)

// RootFile names root version n.
func RootFile(n int64) string { return strconv.FormatInt(n, 10) + ".root.json" }

// Signer signs TUF metadata with one key, in the scheme TUF names for its
// type (RSASSA-PSS with SHA-256, Ed25519, ECDSA with SHA-256).
type Signer struct {
	signature.Signer
	Key *metadata.Key
}

// NewSigner adapts a private key (signing.LoadPrivateKey reads cosign's
// key files) to TUF: cosign signs with PKCS#1 v1.5 for RSA and Ed25519ph,
// TUF verifies RSA-PSS and plain Ed25519.
func NewSigner(priv crypto.Signer) (*Signer, error) {
	var s signature.Signer
	var err error
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		s, err = signature.LoadRSAPSSSigner(k, crypto.SHA256, &rsa.PSSOptions{Hash: crypto.SHA256})
	case *ecdsa.PrivateKey:
		s, err = signature.LoadECDSASigner(k, crypto.SHA256)
	case ed25519.PrivateKey:
		s, err = signature.LoadED25519Signer(k)
	default:
		return nil, fmt.Errorf("a %T key cannot sign TUF metadata (want RSA, ECDSA or Ed25519)", priv)
	}
	if err != nil {
		return nil, err
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{Signer: s, Key: key}, nil
}

// BuildOptions are what Build needs.
type BuildOptions struct {
	Signer  *Signer
	Catalog *Catalog
	// State is the scope's state after the last snapshot (zero: none yet).
	State State
	// Now is when the snapshot is written (zero: time.Now()).
	Now    time.Time
	Expiry Expiry
}

// ErrRootKey matches a key the scope's root does not trust.
var ErrRootKey = errors.New("the snapshot root does not trust this key")

// Build writes the next snapshot: the catalog as the one target, targets,
// snapshot and timestamp metadata at State.Version+1 (each with the length
// and SHA-256 of the file it vouches for, so a mixed set is refused), and
// a new root when there is none yet or the last one expires before the
// metadata it signs would. It returns the files and the state to keep.
func Build(o BuildOptions) (Files, State, error) {
	if o.Signer == nil || o.Catalog == nil {
		return nil, State{}, errors.New("build snapshot: a signer and a catalog are needed")
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	exp := o.Expiry.WithDefaults()
	keyID, err := o.Signer.Key.ID()
	if err != nil {
		return nil, State{}, err
	}
	st := State{Version: o.State.Version + 1, Roots: slices.Clone(o.State.Roots)}
	files := Files{}
	var lastExpiry time.Time
	if n := len(st.Roots); n > 0 {
		root, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(st.Roots[n-1])
		if err != nil {
			return nil, State{}, fmt.Errorf("build snapshot: the stored root %d: %w", n, err)
		}
		if _, ok := root.Signed.Keys[keyID]; !ok {
			return nil, State{}, fmt.Errorf("%w: root version %d trusts key %s, this key is %s; sign with the key the root names (root rotation to another key is not supported yet)",
				ErrRootKey, n, keysOf(root.Signed.Keys), keyID)
		}
		lastExpiry = root.Signed.Expires
	}
	longest := max(exp.Targets, exp.Snapshot, exp.Timestamp)
	if len(st.Roots) == 0 || lastExpiry.Before(now.Add(longest)) {
		root := metadata.Root(now.Add(exp.Root))
		root.Signed.Version = int64(len(st.Roots) + 1)
		root.Signed.ConsistentSnapshot = false
		for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
			if err := root.Signed.AddKey(o.Signer.Key, role); err != nil {
				return nil, State{}, err
			}
		}
		b, err := sign(root, o.Signer)
		if err != nil {
			return nil, State{}, err
		}
		st.Roots = append(st.Roots, b)
	}
	for i, r := range st.Roots {
		files[RootFile(int64(i+1))] = r
	}
	o.Catalog.Sort()
	cat, err := json.Marshal(o.Catalog)
	if err != nil {
		return nil, State{}, err
	}
	files[CatalogTarget] = cat

	targets := metadata.Targets(now.Add(exp.Targets))
	targets.Signed.Version = st.Version
	tf, err := metadata.TargetFile().FromBytes(CatalogTarget, cat, "sha256")
	if err != nil {
		return nil, State{}, err
	}
	targets.Signed.Targets[CatalogTarget] = tf
	if files[TargetsFile], err = sign(targets, o.Signer); err != nil {
		return nil, State{}, err
	}

	snap := metadata.Snapshot(now.Add(exp.Snapshot))
	snap.Signed.Version = st.Version
	snap.Signed.Meta[TargetsFile] = metaFile(st.Version, files[TargetsFile])
	if files[SnapshotFile], err = sign(snap, o.Signer); err != nil {
		return nil, State{}, err
	}

	ts := metadata.Timestamp(now.Add(exp.Timestamp))
	ts.Signed.Version = st.Version
	ts.Signed.Meta[SnapshotFile] = metaFile(st.Version, files[SnapshotFile])
	if files[TimestampFile], err = sign(ts, o.Signer); err != nil {
		return nil, State{}, err
	}
	return files, st, nil
}

// metaFile describes a metadata file by version, length and SHA-256.
func metaFile(version int64, b []byte) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	m.Length = int64(len(b))
	h := crypto.SHA256.New()
	h.Write(b)
	m.Hashes = metadata.Hashes{"sha256": h.Sum(nil)}
	return m
}

type signable interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ToBytes(bool) ([]byte, error)
}

func sign(m signable, s *Signer) ([]byte, error) {
	if _, err := m.Sign(s.Signer); err != nil {
		return nil, fmt.Errorf("sign snapshot metadata: %w", err)
	}
	b, err := m.ToBytes(false)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

func keysOf(keys map[string]*metadata.Key) string {
	var ids []string
	for id := range keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) == 1 {
		return ids[0]
	}
	return fmt.Sprint(ids)
}
