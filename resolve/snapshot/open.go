package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"oras.land/oras-go/v2"
)

// The TUF checks a snapshot can fail, each matched by errors.Is on what
// Open returns, and all of them by ErrRefused.
var (
	// ErrRefused matches every snapshot TUF verification refused.
	ErrRefused = errors.New("snapshot refused")
	// ErrRollback: a version older than one this client already trusted.
	ErrRollback = errors.New("rollback")
	// ErrFreeze: expired metadata (a timestamp nobody re-signed, or an
	// attacker replaying an old, once-valid snapshot).
	ErrFreeze = errors.New("freeze")
	// ErrMixAndMatch: a file whose length or hash is not the one the
	// metadata above it names (a tampered catalog, or files from two
	// snapshots mixed).
	ErrMixAndMatch = errors.New("mix-and-match")
	// ErrSignature: metadata not signed by the keys the root trusts.
	ErrSignature = errors.New("signature")
)

// RefusedError says which TUF check refused a snapshot and why.
type RefusedError struct {
	// Check is ErrRollback, ErrFreeze, ErrMixAndMatch or ErrSignature.
	Check error
	Ref   string
	Err   error
}

func (e *RefusedError) Error() string {
	what := map[error]string{
		ErrRollback:    "rollback check: its version is older than one this client already trusted",
		ErrFreeze:      "freeze check: its metadata expired (re-run mkt index snapshot; an expired snapshot may be a replay)",
		ErrMixAndMatch: "mix-and-match check: a file does not have the length and hash the metadata above it names (tampered, or mixed from two snapshots)",
		ErrSignature:   "signature check: not signed by the keys the trusted root names",
	}[e.Check]
	return fmt.Sprintf("snapshot %s refused by TUF's %s: %v", e.Ref, what, e.Err)
}

func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Check, e.Err} }

// classify maps go-tuf's errors to the check that failed.
func classify(ref string, err error) error {
	var check error
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		check = ErrFreeze
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}):
		check = ErrMixAndMatch // an equal version with other content
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		check = ErrRollback
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}), errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		check = ErrMixAndMatch
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		check = ErrSignature
	default:
		return fmt.Errorf("snapshot %s: %w", ref, err)
	}
	return &RefusedError{Check: check, Ref: ref, Err: err}
}

// OpenOptions say what Open trusts.
type OpenOptions struct {
	// Root is the trusted root.json (its first version, or any later one
	// obtained out of band): the keys every snapshot must be signed by.
	Root []byte
	// CacheDir keeps, per trusted root, the metadata this client has
	// trusted, so a later Open refuses an older snapshot; "" means
	// DefaultCacheDir().
	CacheDir string
	// Now, when set, is the time expiry is judged at (tests, benchmarks).
	Now time.Time
	// Name is how errors name the snapshot ("" is the ref given to Open).
	Name string
}

// DefaultCacheDir is $XDG_CACHE_HOME/mkt/snapshots (the user cache
// directory of the platform).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for snapshot metadata (give one): %w", err)
	}
	return filepath.Join(d, "mkt", "snapshots"), nil
}

// Snapshot is a verified catalog.
type Snapshot struct {
	Catalog *Catalog
	// Ref is what it was opened from; Digest its manifest's digest.
	Ref, Digest string
	// Version is the targets version; Expires when the timestamp expires.
	Version int64
	Expires time.Time
	byName  map[string][]*Entry
}

// Open reads the snapshot artifact ref names in src and verifies it with
// go-tuf's updater, starting from the newest root this client trusts for
// o.Root (walking N+1.root.json as TUF does): timestamp, snapshot and
// targets must be signed by the root's keys, unexpired, no older than
// what the cache holds, and each must have the length and hash the one
// above names; the catalog must match its targets entry. The trusted
// metadata is written to the cache only when it verified.
func Open(ctx context.Context, src oras.ReadOnlyTarget, ref string, o OpenOptions) (*Snapshot, error) {
	if len(o.Root) == 0 {
		return nil, errors.New("open snapshot: no trusted root.json (--snapshot-root)")
	}
	name := ref
	if o.Name != "" {
		name = o.Name
	}
	desc, files, err := artifactFiles(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	cacheRoot := o.CacheDir
	if cacheRoot == "" {
		if cacheRoot, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	// One cache per trust anchor: a client trusting two roots (two
	// operators) keeps two histories.
	sum := sha256.Sum256(bytes.TrimSpace(o.Root))
	dir := filepath.Join(cacheRoot, hex.EncodeToString(sum[:8]))
	root := o.Root
	if cached, err := os.ReadFile(filepath.Join(dir, "root.json")); err == nil {
		root = cached // verified by an earlier Open, and as new or newer
	}
	cfg, err := config.New(fetchBase, root)
	if err != nil {
		return nil, err
	}
	cfg.Fetcher = &layerFetcher{ctx: ctx, src: src, files: files}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	cfg.PrefixTargetsWithHash = false
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: the trusted root is not a TUF root.json signed by its own keys: %w", name, err)
	}
	if !o.Now.IsZero() {
		up.UnsafeSetRefTime(o.Now)
	}
	if err := up.Refresh(); err != nil {
		return nil, classify(name, err)
	}
	info, err := up.GetTargetInfo(CatalogTarget)
	if err != nil {
		return nil, classify(name, err)
	}
	data, err := cfg.Fetcher.DownloadFile(fetchBase+"targets/"+CatalogTarget, info.Length, 0)
	if err != nil {
		return nil, classify(name, err)
	}
	if err := info.VerifyLengthHashes(data); err != nil {
		return nil, classify(name, fmt.Errorf("%s: %w", CatalogTarget, err))
	}
	cat, err := ParseCatalog(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	trusted := up.GetTrustedMetadataSet()
	s := &Snapshot{Catalog: cat, Ref: name, Digest: desc.Digest.String(),
		Version: trusted.Targets[metadata.TARGETS].Signed.Version, Expires: trusted.Timestamp.Signed.Expires,
		byName: make(map[string][]*Entry)}
	for i := range cat.Versions {
		e := &cat.Versions[i]
		s.byName[e.Name] = append(s.byName[e.Name], e)
	}
	return s, nil
}

// Lookup returns the entries of name (highest version first, as written).
func (s *Snapshot) Lookup(name string) []*Entry { return s.byName[name] }
