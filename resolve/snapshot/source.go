package snapshot

import (
	"context"
	"fmt"

	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
)

// Source offers a snapshot's versions to the resolver. The snapshot says
// which versions exist and where; each candidate is fetched by digest
// (from the registry, or the OCI layout that remote.Options reads), with
// its signatures and attestations, and must be the name and version the
// snapshot listed: the caller's policy decides on what was fetched, never
// on the snapshot's word.
type Source struct {
	snap    *Snapshot
	remote  remote.Options
	signing *signing.Client
}

var _ resolve.Source = (*Source)(nil)

// Source returns a resolve.Source over s that fetches artifacts with ro.
func (s *Snapshot) Source(ro remote.Options) (*Source, error) {
	ro, err := ro.Shared()
	if err != nil {
		return nil, err
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	return &Source{snap: s, remote: ro, signing: sc}, nil
}

// Versions lists name's versions in the snapshot.
func (src *Source) Versions(_ context.Context, name string) ([]string, error) {
	es := src.snap.Lookup(name)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Version
	}
	return out, nil
}

// Candidate fetches the version the snapshot lists by its digest.
func (src *Source) Candidate(ctx context.Context, name, version string) (*resolve.Candidate, error) {
	var e *Entry
	for _, x := range src.snap.Lookup(name) {
		if x.Version == version {
			e = x
			break
		}
	}
	if e == nil {
		return nil, fmt.Errorf("%s@%s is not in snapshot %s", name, version, src.snap.Ref)
	}
	c, err := resolve.FetchCandidate(ctx, e.Reference(), src.remote, src.signing)
	if err != nil {
		return nil, err
	}
	if c.Name != name || c.Version != version {
		return nil, fmt.Errorf("snapshot %s lists %s@%s as %s, but that artifact is %s@%s", src.snap.Ref, name, version, e.Reference(), c.Name, c.Version)
	}
	return c, nil
}
