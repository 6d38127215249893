package store

import (
	"context"
	"fmt"
	"time"
)

// ClaimName inserts the claim unless the name has an owner, then reads the
// owner back: the primary key on name makes the first claim win even when
// several replicas ingest the same name at once.
func (s *sqlStore) ClaimName(ctx context.Context, name, tenant, repository string) (*NameOwner, error) {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO name_owners (name, tenant, repository, claimed_at) VALUES (?, ?, ?, ?) `+s.d.insertIgnore),
		name, tenant, repository, time.Now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("claim name %s for %s: %w", name, repository, err)
	}
	o := &NameOwner{Name: name}
	var claimed int64
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT tenant, repository, claimed_at FROM name_owners WHERE name = ?`), name).
		Scan(&o.Tenant, &o.Repository, &claimed); err != nil {
		return nil, fmt.Errorf("read the owner of %s: %w", name, err)
	}
	o.ClaimedAt = time.Unix(0, claimed).UTC()
	return o, nil
}

func (s *sqlStore) AddAlert(ctx context.Context, a *Alert) (bool, error) {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	r, err := s.db.ExecContext(ctx, s.q(`INSERT INTO alerts (tenant, type, name, version, repository, old_digest, new_digest, message, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) `+s.d.insertIgnore),
		a.Tenant, a.Type, a.Name, a.Version, a.Repository, a.OldDigest, a.NewDigest, a.Message, a.CreatedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("alert %s %s@%s: %w", a.Type, a.Name, a.Version, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}
