// Package semvercache parses versions and constraints once: parsing is
// regular-expression work, and the same few strings ("1.2.0", "^1.0.0",
// ">=2.1.0 <3.0.0") recur across thousands of extensions in one resolution
// and across the resolutions a long-running index serves. The caches are
// bounded (least recently used entries go first), so a process that sees
// ever new strings, an index ingesting for months, does not grow without
// limit. Parsed values are immutable and shared.
package semvercache

import (
	"github.com/Masterminds/semver/v3"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Size is how many versions, and separately how many constraints, are
// kept: a resolution over 1,000 extensions of 20 versions each fits.
const Size = 32 << 10

type parsedVersion struct {
	v   *semver.Version
	err error
}

type parsedConstraint struct {
	c   *semver.Constraints
	err error
}

var (
	versions    = mustLRU[parsedVersion]()
	constraints = mustLRU[parsedConstraint]()
)

func mustLRU[T any]() *lru.Cache[string, T] {
	c, err := lru.New[string, T](Size)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// StrictVersion is semver.StrictNewVersion, cached.
func StrictVersion(s string) (*semver.Version, error) {
	if p, ok := versions.Get(s); ok {
		return p.v, p.err
	}
	v, err := semver.StrictNewVersion(s)
	versions.Add(s, parsedVersion{v, err})
	return v, err
}

// Constraint is semver.NewConstraint, cached.
func Constraint(s string) (*semver.Constraints, error) {
	if p, ok := constraints.Get(s); ok {
		return p.c, p.err
	}
	c, err := semver.NewConstraint(s)
	constraints.Add(s, parsedConstraint{c, err})
	return c, err
}

// Len is how many versions and constraints are cached, for tests.
func Len() (versionCount, constraintCount int) { return versions.Len(), constraints.Len() }
