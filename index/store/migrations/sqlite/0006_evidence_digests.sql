-- +goose Up
-- The digests of the evidence manifests (cosign .sig/.att tags, the referrers tag
-- sha256-<hex>) a version's decision was made from: the crawl re-verifies a version
-- when they change, so a signature or revocation a notification missed is seen.
ALTER TABLE versions ADD COLUMN evidence_digests TEXT NOT NULL DEFAULT '';
