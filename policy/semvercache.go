package policy

import (
	"sync"

	"github.com/Masterminds/semver/v3"
)

// Parsing versions and constraints is regular-expression work and the same
// few strings ("1.2.0", "^1.0.0", ">=2.1.0 <3.0.0") recur across thousands
// of extensions, so parsed values are shared. Entries are immutable.
var (
	versionCache    sync.Map // string → *semver.Version (strict) or error
	constraintCache sync.Map // string → *semver.Constraints or error
)

type parsedVersion struct {
	v   *semver.Version
	err error
}

type parsedConstraint struct {
	c   *semver.Constraints
	err error
}

// strictVersion is semver.StrictNewVersion, cached.
func strictVersion(s string) (*semver.Version, error) {
	if p, ok := versionCache.Load(s); ok {
		pv := p.(parsedVersion)
		return pv.v, pv.err
	}
	v, err := semver.StrictNewVersion(s)
	versionCache.Store(s, parsedVersion{v, err})
	return v, err
}

// parseConstraint is semver.NewConstraint, cached.
func parseConstraint(s string) (*semver.Constraints, error) {
	if p, ok := constraintCache.Load(s); ok {
		pc := p.(parsedConstraint)
		return pc.c, pc.err
	}
	c, err := semver.NewConstraint(s)
	constraintCache.Store(s, parsedConstraint{c, err})
	return c, err
}
