package policy

import (
	"errors"

	"github.com/connectsoft/marketplace/signing"
)

// KeyOnlyFile is what a key-only policy gives as its File, in messages.
const KeyOnlyFile = "--key"

// KeyOnly is the policy `mkt verify --key K... --require TYPE...` means:
// one trust root of the given keys and one rule for every artifact that
// requires a signature by one of them and, for each type in require (a
// short name or a predicate type URI), an attestation by one of them,
// valid for its type's schema. It is evaluated like a policy file, so both
// ways of verifying report through the same Decision; as with any policy,
// a version that one of the keys yanked is refused unless pinned by digest.
func KeyOnly(keys []*signing.Key, require []string) (*Policy, error) {
	if len(keys) == 0 {
		return nil, errors.New("key-only policy: give at least one key")
	}
	root := &trustRoot{name: KeyOnlyFile, at: KeyOnlyFile, keys: keys}
	for _, k := range keys {
		root.refs = append(root.refs, k.Ref)
	}
	r := &rule{spec: RuleSpec{
		Name:       KeyOnlyFile,
		Match:      MatchSpec{Repositories: []string{"**"}},
		Signatures: &SignaturesSpec{TrustRoots: []string{root.name}, Threshold: 1},
	}}
	for _, t := range require {
		typ, err := signing.PredicateType(t)
		if err != nil {
			return nil, err
		}
		r.spec.Attestations = append(r.spec.Attestations, AttestationSpec{Type: typ, TrustRoots: []string{root.name}})
		r.attests = append(r.attests, &attestReq{typ: typ, roots: []string{root.name}})
	}
	return &Policy{File: KeyOnlyFile, roots: map[string]*trustRoot{root.name: root}, rules: []*rule{r}, keysLoaded: true}, nil
}
