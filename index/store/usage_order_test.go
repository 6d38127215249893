package store

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// PostgreSQL's usage answers come back in the order its plan reads them,
// not the answer's: usageRowChunks.sorted puts them in order by integer
// keys whose texts were numbered as first seen, packed into one integer
// or, when they would not fit, compared field by field (odd rounds).
// Texts first seen out of byte order (later names, upper case after
// lower, multi-byte) and rows shuffled must come out as a sort of the
// strings would put them.
func TestUsageRowsComeOutInTheAnswersOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	names := []string{"zeta/b", "acme/a", "Acme/z", "acme/ä", "acme/a-b", "acme/a.b", "acme/ab"}
	versions := []string{"1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.0"}
	tenants := []string{"umbrella", "globex", "Globex", "initech"}
	var want []UsageRow
	periods := []int64{20261130, 20261101, 20261115}
	for _, p := range periods {
		for _, n := range names {
			for _, v := range versions {
				for _, tn := range tenants {
					if rng.IntN(3) == 0 {
						continue
					}
					want = append(want, UsageRow{Period: strings.Repeat("x", int(p%100)), Name: n, Version: v, Tenant: tn, Publisher: "p", Pulls: p})
				}
			}
		}
	}
	for round := range 20 {
		in := slices.Clone(want)
		// Round 0 is in the order made, 1 and 2 already in the answer's
		// order (sorted by the previous round), the others shuffled.
		if round > 2 {
			rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		}
		var c usageRowChunks
		var texts usageTexts
		for _, r := range in {
			key := usageOrder{period: texts.period(r.Pulls), name: texts.intern([]byte(r.Name)), version: texts.intern([]byte(r.Version)), tenant: texts.intern([]byte(r.Tenant))}
			c.add(r, key)
		}
		got := c.sortedBy(&texts, round%2 == 0)
		slices.SortFunc(want, func(a, b UsageRow) int {
			return cmp.Or(cmp.Compare(a.Pulls, b.Pulls), strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version), strings.Compare(a.Tenant, b.Tenant))
		})
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: %d rows out of order:\ngot  %v\nwant %v", round, len(got), got[:min(8, len(got))], want[:min(8, len(want))])
		}
	}
}
