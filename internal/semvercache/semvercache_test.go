package semvercache_test

import (
	"fmt"
	"testing"

	"github.com/connectsoft/marketplace/internal/semvercache"
)

func TestCacheIsBoundedAndAnswersLikeSemver(t *testing.T) {
	for i := range semvercache.Size + 1000 {
		if _, err := semvercache.StrictVersion(fmt.Sprintf("1.%d.0", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := semvercache.Constraint(fmt.Sprintf("^1.%d.0", i)); err != nil {
			t.Fatal(err)
		}
	}
	if v, c := semvercache.Len(); v > semvercache.Size || c > semvercache.Size {
		t.Fatalf("cache holds %d versions and %d constraints, bound %d", v, c, semvercache.Size)
	}
	// Errors are cached as answers too, and stay errors.
	for range 2 {
		if _, err := semvercache.StrictVersion("v1.0"); err == nil {
			t.Fatal("v1.0 is not a strict version")
		}
	}
	c, _ := semvercache.Constraint(">=2.1.0 <3.0.0")
	v, _ := semvercache.StrictVersion("2.4.0")
	if !c.Check(v) {
		t.Fatal("2.4.0 should satisfy >=2.1.0 <3.0.0")
	}
}
