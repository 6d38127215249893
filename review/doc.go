// Package review is the automated review pipeline of DESIGN §6.2: it reads
// an extension once — a directory as `mkt push` would pack it, or a pushed
// artifact's layer streamed from its registry — and runs every check on
// each file in that one pass: descriptor and content agree, licence,
// secrets (gitleaks' rule set), executables against declared permissions,
// size and file-count limits, the dependency closure under the stage's
// policy, compatibility evidence, a CycloneDX SBOM of the files and of the
// dependency manifests inside, and known vulnerabilities from an offline
// OSV database.
//
// Check and CheckDir/CheckRef return a Report: each check passed, failed
// or skipped (with the reason), with findings that carry a severity and a
// location. A finding at or above the stage's blocking severity rejects the
// version. Report.Predicate is the review predicate (reviewer "pipeline")
// that Attest signs, beside the SBOM as a CycloneDX attestation; the index's
// review queue shows these findings to reviewers.
//
// The package sits between resolve, whose resolution the dependency check
// uses through a narrow function, and the CLI; it links gitleaks, whose
// rules are compiled on the first check only, never at start-up.
package review
