package store

import (
	"context"
	"encoding/json"
	"time"
)

// ControlStore keeps the index's control state (DESIGN §6.3): for each
// control-list reference and operator key set, the newest list accepted.
// It outlives the process and is shared by replicas, so that a restarted
// index refuses an older, still valid list a registry serves (rollback).
// The SQL stores implement it.
type ControlStore interface {
	// ControlState returns the record of ref under keys; ErrNotFound when
	// none was accepted yet.
	ControlState(ctx context.Context, ref, keys string) (*ControlRecord, error)
	// PutControlState stores r only over a lower sequence, or over the
	// same sequence and digest (a newer FetchedAt), in one statement:
	// writers racing never lower it. It reports whether r was stored.
	PutControlState(ctx context.Context, r *ControlRecord) (bool, error)
}

// ControlRecord is the newest control list accepted from Ref, verified
// with the operator key set Keys (a fingerprint of the keys).
type ControlRecord struct {
	Ref       string
	Keys      string
	Sequence  int64
	Digest    string
	FetchedAt time.Time
	// List is the list's JSON as it was signed.
	List json.RawMessage
}
