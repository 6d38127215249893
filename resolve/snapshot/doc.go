// Package snapshot is the signed offline catalog (DESIGN §6.5): what an
// index lets one visibility scope see, written as TUF metadata (root,
// targets, snapshot, timestamp) around one target file, the catalog, and
// carried as one OCI artifact (SnapshotArtifactType) that `mkt copy` moves
// to a mirror or an OCI layout like any other.
//
// Build writes the metadata with go-tuf from the writer's State (the last
// version written and every root signed so far), so that each snapshot
// takes a higher version than the one before. Open is the client: it
// verifies an artifact with go-tuf's updater against a trusted root.json,
// keeping the metadata it trusted in a cache directory, so a rolled-back
// (older), frozen (expired) or mixed (hashes that do not match) snapshot
// is refused as TUF specifies. A verified Snapshot is a resolve.Source:
// it replaces an index for resolution, while every chosen artifact is
// still fetched by digest from its registry (or an OCI layout) and judged
// by the caller's policy.
package snapshot
