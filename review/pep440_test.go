package review_test

import (
	"encoding/json"
	"testing"

	"github.com/connectsoft/marketplace/review"
)

// A PyPI version outside SemVer's grammar (a post-release, a PEP 440
// pre-release) inside an affected range is affected.
func TestPyPIVersionOutsideSemVerInsideAnAffectedRange(t *testing.T) {
	var af review.Affected
	if err := json.Unmarshal([]byte(`{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}`), &af); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2.30.0", "2.30.0.post1", "2.31.0rc1", "2.30.0.dev1"} {
		if !af.Affects(v) {
			t.Errorf("%s: not affected, want affected by [2.3.0, 2.31.0)", v)
		}
	}
}
