-- +goose Up
-- Ordering of evidence writes (docs/index.md, "Ingest ordering"): every
-- ingest takes the next generation before it reads the registry, and a
-- version's evidence is replaced only by a write of a generation at least
-- the stored one's, so a slow ingest that read less never overwrites a
-- later one. SQLite has no sequences: a counter row, bumped in a write
-- transaction (one writer at a time, so numbers follow time).
ALTER TABLE versions ADD COLUMN evidence_gen INTEGER NOT NULL DEFAULT 0;
CREATE TABLE evidence_gen (n INTEGER NOT NULL);
INSERT INTO evidence_gen (n) VALUES (0);
