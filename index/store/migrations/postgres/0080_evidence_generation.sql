-- +goose Up
-- Ordering of evidence writes (docs/index.md, "Ingest ordering"): every
-- ingest takes the next generation before it reads the registry, and a
-- version's evidence is replaced only by a write of a generation at least
-- the stored one's, so a slow ingest that read less never overwrites a
-- later one, whichever replica ran it. A sequence: nextval never blocks and
-- never goes back, and a call that starts after another returned gets a
-- higher number (CACHE 1, the default).
ALTER TABLE versions ADD COLUMN evidence_gen BIGINT NOT NULL DEFAULT 0;
CREATE SEQUENCE evidence_gen;
