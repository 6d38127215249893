// Package signing signs and verifies Marketplace artifacts exactly as stock
// cosign v2 does, so that `cosign verify` accepts what mkt signs and mkt
// accepts what cosign signs.
//
// Signatures are simple-signing payloads in the sha256-<hex>.sig tag;
// attestations are DSSE envelopes of in-toto statements in the
// sha256-<hex>.att tag; with Referrers set, both are written as OCI 1.1
// referrers instead. Verification reads both forms. The crypto is
// sigstore's (signature, dsse, cryptoutils; go-securesystemslib's dsse and
// encrypted) and the in-toto statements cosign's (pkg/cosign/attestation),
// never code of our own. cosign's storage formats are read and written with
// go-containerregistry, following cosign's pkg/oci and pkg/cosign/remote
// step for step (oci.go), since those packages link cosign's
// transparency-log client, which mkt never uses; interop tests against the
// stock cosign binary hold both directions to cosign's behaviour.
//
// The Marketplace predicate types (review, compatibility, terms, lifecycle)
// are Go types with JSON Schemas beside them; a predicate is validated
// before it is signed. Among the attestations of one type from trusted
// keys, the newest wins: a review revoked after its approval is revoked.
package signing
