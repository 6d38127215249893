package storetest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/connectsoft/marketplace/index/store"
)

// generationTests check the evidence generation's compare-and-swap
// (store.Version.Generation): a refresh whose registry read began before
// the stored one's changes nothing.
var generationTests = map[string]func(*testing.T, store.Store){
	"GenerationsIncrease":          generationsIncrease,
	"StaleEvidenceWriteIsRefused":  staleEvidenceWriteIsRefused,
	"ConcurrentGenerationsInOrder": concurrentGenerationsLastWins,
}

func generationsIncrease(t *testing.T, s store.Store) {
	ctx := context.Background()
	prev := int64(0)
	for range 5 {
		g, err := s.Generation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if g <= prev {
			t.Fatalf("generation %d after %d: not increasing", g, prev)
		}
		prev = g
	}
}

func staleEvidenceWriteIsRefused(t *testing.T, s store.Store) {
	h := h{t, s}
	ctx := context.Background()
	older, err := s.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := s.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := ver("acme", "acme/cas", "1.0.0", "sha256:a", 0)
	v.Generation, v.Evidence, v.Reviewed = newer, json.RawMessage(`{"reviews":2}`), true
	if r := h.upsert(v); !r.Created {
		t.Fatalf("first write: %+v", r)
	}
	stale := ver("acme", "acme/cas", "1.0.0", "sha256:a", 1)
	stale.Generation, stale.Evidence, stale.Reviewed = older, json.RawMessage(`{"reviews":1}`), false
	if r := h.upsert(stale); !r.Stale || r.Updated {
		t.Fatalf("a write of an older generation: %+v, want Stale", r)
	}
	got := readVersion(t, s)
	if string(got.Evidence) != `{"reviews":2}` || !got.Reviewed {
		t.Fatalf("a stale write changed the version: reviewed %v evidence %s", got.Reviewed, got.Evidence)
	}
	// The same generation again (a retry of one ingest) may complete it.
	again := ver("acme", "acme/cas", "1.0.0", "sha256:a", 2)
	again.Generation, again.Evidence, again.Reviewed = newer, json.RawMessage(`{"reviews":3}`), true
	if r := h.upsert(again); !r.Updated || r.Stale {
		t.Fatalf("a write of the stored generation: %+v, want Updated", r)
	}
	// A writer without a generation takes one now, the newest.
	none := ver("acme", "acme/cas", "1.0.0", "sha256:a", 3)
	none.Evidence = json.RawMessage(`{"reviews":0}`)
	if r := h.upsert(none); !r.Updated || none.Generation <= newer {
		t.Fatalf("a write without a generation: %+v, generation %d (stored %d)", r, none.Generation, newer)
	}
	if got := readVersion(t, s); string(got.Evidence) != `{"reviews":0}` {
		t.Fatalf("a later read that saw less did not win: %s", got.Evidence)
	}
}

// Writers of many generations at once, in any order: the stored evidence
// is the highest generation's.
func concurrentGenerationsLastWins(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 16
	gens := make([]int64, n)
	for i := range gens {
		g, err := s.Generation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gens[i] = g
	}
	errs := make(chan error, n)
	for i := n - 1; i >= 0; i-- { // the newest first: most writes come late and must lose
		go func() {
			v := ver("acme", "acme/cas", "1.0.0", "sha256:a", 0)
			v.Generation, v.Evidence = gens[i], json.RawMessage(`{"gen":`+strconv.Itoa(i)+`}`)
			_, err := s.UpsertVersion(ctx, v)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Version(ctx, "acme", "acme/cas", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"gen":` + strconv.Itoa(n-1) + `}`; string(got.Evidence) != want {
		t.Fatalf("stored evidence %s, want the newest generation's %s", got.Evidence, want)
	}
}

func readVersion(t *testing.T, s store.Store) *store.Version {
	t.Helper()
	v, err := s.Version(context.Background(), "acme", "acme/cas", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	return v
}
