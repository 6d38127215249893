package store

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrSnapshotConflict is returned when a snapshot scope's state moved
// while a writer built its next snapshot (another writer was faster).
var ErrSnapshotConflict = errors.New("the snapshot state changed meanwhile")

// SnapshotStore is what writing signed snapshots (DESIGN §6.5) needs of a
// store: every version with its descriptor, in one read, and each scope's
// writer state, replaced only over the version it was read at. The SQL
// stores implement it.
type SnapshotStore interface {
	// SnapshotVersions lists every version of every tenant, ordered by
	// name then tenant: the headers and the descriptor, without decision
	// and evidence.
	SnapshotVersions(ctx context.Context) ([]SnapshotVersion, error)
	// SnapshotState returns a scope's state and its version; ErrNotFound
	// when the scope has none yet.
	SnapshotState(ctx context.Context, scope string) (int64, json.RawMessage, error)
	// PutSnapshotState stores state at version when the scope's stored
	// version is still prev (0: none), else ErrSnapshotConflict; version
	// must be above prev.
	PutSnapshotState(ctx context.Context, scope string, prev, version int64, state json.RawMessage) error
}

// SnapshotVersion is a version as a snapshot reads it.
type SnapshotVersion struct {
	*Version
	// Decided says the index's policy decided on it at ingest (Allowed is
	// then its verdict); an index without a policy decides nothing.
	Decided bool
}
