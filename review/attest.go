package review

import (
	"context"
	"errors"
	"fmt"

	"github.com/connectsoft/marketplace/signing"
)

// Attest signs rep as the pipeline's review predicate (signing.ReviewV1,
// reviewer "pipeline", level = stage) and its SBOM as a CycloneDX
// attestation (signing.CycloneDXV1), both about rep.Reference — the digest
// that was read, never a tag — as stock `cosign attest` would store them.
// A rejected report is attested too: a rejection is a decision the index
// shows, and the next run's approval supersedes it (newest wins).
func Attest(ctx context.Context, c *signing.Client, s *signing.Signer, rep *Report, w signing.WriteOptions) error {
	if rep.Reference == "" {
		return errors.New("a directory cannot be attested: push it, then run review check on the reference with --attest")
	}
	pred, err := rep.PredicateJSON()
	if err != nil {
		return err
	}
	if len(rep.sbom) == 0 {
		return errors.New("the run produced no SBOM to attest")
	}
	rv, err := c.Attest(ctx, rep.Reference, s, signing.ReviewV1, pred, w)
	if err != nil {
		return fmt.Errorf("attest the review: %w", err)
	}
	rep.Attestations = append(rep.Attestations, rv)
	sb, err := c.Attest(ctx, rep.Reference, s, signing.CycloneDXV1, rep.sbom, w)
	if err != nil {
		return fmt.Errorf("attest the SBOM: %w", err)
	}
	rep.Attestations = append(rep.Attestations, sb)
	return nil
}
