package marketplace_test

import (
	"context"
	"testing"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// Inspect lists an artifact's evidence and marks what the given keys made
// as verified; without keys it verifies nothing, and it decides nothing.
func TestInspectMarksTheEvidenceOfTheGivenKeys(t *testing.T) {
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	signer, key, _ := fixture.KeyPair(t, dir, "pub")
	_, other, _ := fixture.KeyPair(t, dir, "other")
	ref := pub.Publish("insp", fixture.Ext{Name: "acme/seen", Version: "1.0.0"})
	pub.Sign(ref, signer)
	pub.Attest(ref, signer, "review", approve)

	for _, tc := range []struct {
		name     string
		keys     []*signing.Key
		verified bool
	}{
		{"no keys", nil, false},
		{"the signer's key", []*signing.Key{key}, true},
		{"another key", []*signing.Key{other}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := marketplace.Inspect(context.Background(), ref, tc.keys, pub.Remote)
			if err != nil {
				t.Fatal(err)
			}
			if in.Extension.Metadata.Name != "acme/seen" || in.Descriptor.Digest.String() == "" {
				t.Fatalf("inspected %+v", in.Inspection)
			}
			if len(in.Signatures) != 1 || len(in.Attestations) != 1 {
				t.Fatalf("%d signatures and %d attestations, want 1 and 1", len(in.Signatures), len(in.Attestations))
			}
			if in.Signatures[0].Verified != tc.verified || in.Attestations[0].Verified != tc.verified {
				t.Fatalf("verified: signature %v, attestation %v; want %v", in.Signatures[0].Verified, in.Attestations[0].Verified, tc.verified)
			}
		})
	}
}
