// Package impact answers the bad-day question "if this version, digest or
// signing key is bad, what else is": the reverse dependency closure of
// versions in the index (every version that depends on it, transitively,
// through a constraint that admits it) and the tenants that used any of
// them.
//
// A Graph keeps every version's declared dependencies and verified signers
// in memory, indexed backwards (dependency name → dependents), and follows
// the store's change feed (store.LinkFeed) before each query, so that a
// query over 100,000 versions is a walk in memory, not a recursive query
// over JSON in the database. Who used a version comes from a Usage: the
// metering store once it has the events; until then GraphTenants, the
// tenants that own the versions. Visibility (who may ask, what they may
// see of the answer) is the API's concern (index/impact_api.go).
package impact
