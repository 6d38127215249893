package store

import "context"

// ReadmeStore keeps the README.md each ingested artifact carries, by
// manifest digest (DESIGN §6, issue 14): the ingester reads it from the
// layer once, and the extension page renders it. A digest names fixed
// content, so the row is shared by every tenant and name that digest is
// stored under; who may see it is decided by the version it is shown
// for. The SQL stores implement it.
type ReadmeStore interface {
	// Readme returns the README stored for a manifest digest, ErrNotFound
	// when none was read for it yet (Found false: the artifact has none).
	Readme(ctx context.Context, digest string) (*Readme, error)
	// PutReadme stores r; the first one stored for a digest stays.
	PutReadme(ctx context.Context, r *Readme) error
}

// Readme is an artifact's README as the ingester read it: at most the
// first bytes of it (artifact.DefaultReadmeMaxText), the source text, not
// HTML.
type Readme struct {
	Digest string
	// Found is false when the artifact has no README.md (within the
	// bounds the ingester reads): the page shows the description.
	Found bool
	Text  []byte
	// Size is the file's whole size, Truncated whether Text is less.
	Size      int64
	Truncated bool
}
