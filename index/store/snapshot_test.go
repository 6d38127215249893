package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

// Two writers of one scope: the second, built over the same state, is
// refused, so no two snapshots share a version and none goes backwards.
func TestSnapshotStateMovesOnlyForward(t *testing.T) {
	for driver, open := range map[string]func(*testing.T) store.Store{
		"sqlite":   func(t *testing.T) store.Store { return storetest.SQLite(t) },
		"postgres": func(t *testing.T) store.Store { return storetest.Postgres(t) },
	} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			ss := open(t).(store.SnapshotStore)
			if _, _, err := ss.SnapshotState(ctx, "public"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("no state yet: %v", err)
			}
			if err := ss.PutSnapshotState(ctx, "public", 0, 1, json.RawMessage(`{"version":1}`)); err != nil {
				t.Fatal(err)
			}
			if err := ss.PutSnapshotState(ctx, "public", 0, 1, json.RawMessage(`{"version":1,"b":1}`)); !errors.Is(err, store.ErrSnapshotConflict) {
				t.Fatalf("a second first snapshot: %v", err)
			}
			if err := ss.PutSnapshotState(ctx, "public", 1, 2, json.RawMessage(`{"version":2}`)); err != nil {
				t.Fatal(err)
			}
			if err := ss.PutSnapshotState(ctx, "public", 1, 2, json.RawMessage(`{"version":2,"b":1}`)); !errors.Is(err, store.ErrSnapshotConflict) {
				t.Fatalf("a writer that read version 1: %v", err)
			}
			if err := ss.PutSnapshotState(ctx, "public", 2, 1, json.RawMessage(`{}`)); err == nil {
				t.Fatal("went back to version 1")
			}
			v, st, err := ss.SnapshotState(ctx, "public")
			if err != nil || v != 2 || string(st) != `{"version":2}` {
				t.Fatalf("state %d %s %v", v, st, err)
			}
			if _, _, err := ss.SnapshotState(ctx, "tenant:acme"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("scopes are separate: %v", err)
			}
		})
	}
}
