-- +goose Up
-- The README.md each ingested artifact carries (issue 14), by manifest
-- digest: read once at ingest (at most 256 KiB of it), rendered and
-- sanitised when a page shows it. found = false records that the artifact
-- has none, so re-ingests (new evidence) do not read its layer again.
CREATE TABLE readmes (
    digest     TEXT PRIMARY KEY,
    found      BOOLEAN NOT NULL,
    text       BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    truncated  BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
