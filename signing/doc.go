// Package signing signs and verifies Marketplace artifacts exactly as stock
// cosign v2 does, so that `cosign verify` accepts what mkt signs and mkt
// accepts what cosign signs.
//
// Signatures are simple-signing payloads in the sha256-<hex>.sig tag;
// attestations are DSSE envelopes of in-toto statements in the
// sha256-<hex>.att tag; with Referrers set, both are written as OCI 1.1
// referrers instead. Verification reads both forms. Formats and crypto come
// from cosign's and sigstore's Go packages, never from code of our own; this
// package only chooses, validates and explains.
//
// The Marketplace predicate types (review, compatibility, terms, lifecycle)
// are Go types with JSON Schemas beside them; a predicate is validated
// before it is signed. Among the attestations of one type from trusted
// keys, the newest wins: a review revoked after its approval is revoked.
package signing
