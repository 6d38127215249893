package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

var _ SnapshotStore = (*sqlStore)(nil)

func (s *sqlStore) SnapshotVersions(ctx context.Context) ([]SnapshotVersion, error) {
	// versionColumns' shape, read as scanVersions reads it, with neither
	// evidence nor decision (large, and not needed): only whether there is
	// a decision, as an empty document.
	rows, err := s.db.QueryContext(ctx, `SELECT `+headerColumns+`, descriptor,
		CASE WHEN decision IS NULL THEN NULL ELSE '{}' END, NULL, '' FROM versions ORDER BY name, tenant`)
	if err != nil {
		return nil, fmt.Errorf("read every version: %w", err)
	}
	vs, err := s.scanVersions(rows, true)
	if err != nil {
		return nil, fmt.Errorf("read every version: %w", err)
	}
	out := make([]SnapshotVersion, len(vs))
	for i, v := range vs {
		out[i] = SnapshotVersion{Version: v, Decided: len(v.Decision) > 0}
		v.Decision = nil
	}
	return out, nil
}

func (s *sqlStore) SnapshotState(ctx context.Context, scope string) (int64, json.RawMessage, error) {
	var version int64
	var state string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT version, state FROM snapshot_states WHERE scope = ?`), scope).Scan(&version, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read the snapshot state of %q: %w", scope, err)
	}
	return version, json.RawMessage(state), nil
}

func (s *sqlStore) PutSnapshotState(ctx context.Context, scope string, prev, version int64, state json.RawMessage) error {
	if version <= prev {
		return fmt.Errorf("snapshot state of %q: version %d is not above %d", scope, version, prev)
	}
	now := time.Now().UnixNano()
	var res sql.Result
	var err error
	if prev == 0 {
		res, err = s.db.ExecContext(ctx, s.q(`INSERT INTO snapshot_states (scope, version, state, updated_at) VALUES (?, ?, ?, ?) `+s.d.insertIgnore),
			scope, version, string(state), now)
	} else {
		res, err = s.db.ExecContext(ctx, s.q(`UPDATE snapshot_states SET version = ?, state = ?, updated_at = ? WHERE scope = ? AND version = ?`),
			version, string(state), now, scope, prev)
	}
	if err != nil {
		return fmt.Errorf("store the snapshot state of %q: %w", scope, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: scope %q is no longer at version %d", ErrSnapshotConflict, scope, prev)
	}
	return nil
}
