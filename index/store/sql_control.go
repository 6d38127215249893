package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

var _ ControlStore = (*sqlStore)(nil)

func (s *sqlStore) ControlState(ctx context.Context, ref, keys string) (*ControlRecord, error) {
	r := &ControlRecord{Ref: ref, Keys: keys}
	var at int64
	var list string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT sequence, digest, fetched_at, list FROM control_states WHERE ref = ? AND keys = ?`), ref, keys).
		Scan(&r.Sequence, &r.Digest, &at, &list)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read the control state of %s: %w", ref, err)
	}
	r.FetchedAt = time.Unix(0, at).UTC()
	r.List = json.RawMessage(list)
	return r, nil
}

func (s *sqlStore) PutControlState(ctx context.Context, r *ControlRecord) (bool, error) {
	// One statement, so the comparison and the write are atomic in both
	// databases: a row is replaced only by a higher sequence, or refreshed
	// by the same list fetched later.
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO control_states (ref, keys, sequence, digest, fetched_at, list) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (ref, keys) DO UPDATE SET sequence = excluded.sequence, digest = excluded.digest, fetched_at = excluded.fetched_at, list = excluded.list
		WHERE control_states.sequence < excluded.sequence
		   OR (control_states.sequence = excluded.sequence AND control_states.digest = excluded.digest AND control_states.fetched_at < excluded.fetched_at)`),
		r.Ref, r.Keys, r.Sequence, r.Digest, r.FetchedAt.UnixNano(), string(r.List))
	if err != nil {
		return false, fmt.Errorf("store the control state of %s: %w", r.Ref, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store the control state of %s: %w", r.Ref, err)
	}
	return n == 1, nil
}
