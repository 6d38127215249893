// Package resolve chooses versions across a dependency graph. For every
// name reachable from the requirements it picks the highest version that
// satisfies every constraint on it, the Factory version and the policy
// (policy.Policy decides each candidate; resolve only asks), and can say
// why each newer version was passed over.
//
// Versions come from a Source: a registry (RegistrySource, one repository
// per extension under a prefix), an index service (which decides at ingest
// and hands its Decision along with each Candidate), or memory
// (MemorySource: a snapshot, tests, benchmarks). FetchCandidate reads one
// artifact and its evidence from a registry for callers outside a
// resolution (marketplace.Verify). resolve sits between policy, whose
// verdicts it uses, and index, which resolves for its clients.
package resolve
