package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

var _ ReadmeStore = (*sqlStore)(nil)

func (s *sqlStore) Readme(ctx context.Context, digest string) (*Readme, error) {
	r := &Readme{Digest: digest}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT found, text, size, truncated FROM readmes WHERE digest = ?`), digest).
		Scan(&r.Found, &r.Text, &r.Size, &r.Truncated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read the README of %s: %w", digest, err)
	}
	return r, nil
}

func (s *sqlStore) PutReadme(ctx context.Context, r *Readme) error {
	text := r.Text
	if text == nil {
		text = []byte{}
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO readmes (digest, found, text, size, truncated, created_at) VALUES (?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		r.Digest, r.Found, text, r.Size, r.Truncated, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("store the README of %s: %w", r.Digest, err)
	}
	return nil
}
