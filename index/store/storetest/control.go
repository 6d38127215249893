package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

var controlTests = map[string]func(*testing.T, store.Store){
	"ControlStateOnlyRises": controlStateOnlyRises,
}

// controlStateOnlyRises: the index's control state is raised by a higher
// sequence only (refreshed by the same list), never lowered nor replaced
// by another list under the same sequence, per reference and key set; and
// replicas racing to store different sequences leave the highest.
func controlStateOnlyRises(t *testing.T, s store.Store) {
	ctx := context.Background()
	cs, ok := s.(store.ControlStore)
	if !ok {
		t.Fatalf("%T keeps no control state", s)
	}
	rec := func(seq int64, digest string, at int) *store.ControlRecord {
		return &store.ControlRecord{Ref: "reg.example/ops/control:latest", Keys: "sha256:ops", Sequence: seq,
			Digest: digest, FetchedAt: t0.Add(time.Duration(at) * time.Minute), List: json.RawMessage(fmt.Sprintf(`{"sequence":%d}`, seq))}
	}
	put := func(r *store.ControlRecord, want bool) {
		t.Helper()
		got, err := cs.PutControlState(ctx, r)
		if err != nil || got != want {
			t.Fatalf("put sequence %d %s at %s: stored %v, %v; want stored %v", r.Sequence, r.Digest, r.FetchedAt, got, err, want)
		}
	}
	get := func(ref, keys string) *store.ControlRecord {
		t.Helper()
		r, err := cs.ControlState(ctx, ref, keys)
		if err != nil {
			t.Fatalf("control state of %s %s: %v", ref, keys, err)
		}
		return r
	}
	if _, err := cs.ControlState(ctx, "reg.example/ops/control:latest", "sha256:ops"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no state yet: %v", err)
	}
	put(rec(5, "sha256:five", 0), true)
	put(rec(4, "sha256:four", 1), false)  // rollback
	put(rec(5, "sha256:other", 2), false) // another list under sequence 5
	put(rec(5, "sha256:five", 0), false)  // the same fetch again
	put(rec(5, "sha256:five", 3), true)   // the same list, fetched later
	put(rec(5, "sha256:five", 1), false)  // an older fetch of it
	r := get("reg.example/ops/control:latest", "sha256:ops")
	if r.Sequence != 5 || r.Digest != "sha256:five" || !r.FetchedAt.Equal(t0.Add(time.Duration(3)*time.Minute)) || string(r.List) != `{"sequence":5}` {
		t.Fatalf("after the rollback attempts: %+v", r)
	}
	// Another key set, or another reference, is its own state.
	other := rec(1, "sha256:one", 0)
	other.Keys = "sha256:someone-else"
	put(other, true)
	if r := get("reg.example/ops/control:latest", "sha256:ops"); r.Sequence != 5 {
		t.Fatalf("another key set's list replaced the operator's: %+v", r)
	}
	if r := get("reg.example/ops/control:latest", "sha256:someone-else"); r.Sequence != 1 {
		t.Fatalf("the other key set's state: %+v", r)
	}

	// Replicas racing: every sequence 6..29 from its own goroutine.
	var wg sync.WaitGroup
	for seq := int64(6); seq < 30; seq++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cs.PutControlState(ctx, rec(seq, fmt.Sprintf("sha256:%d", seq), 10)); err != nil {
				t.Errorf("put %d: %v", seq, err)
			}
		}()
	}
	wg.Wait()
	if r := get("reg.example/ops/control:latest", "sha256:ops"); r.Sequence != 29 || r.Digest != "sha256:29" {
		t.Fatalf("after racing writers the state is %d %s, want the highest, 29", r.Sequence, r.Digest)
	}
}
