-- +goose Up
DROP INDEX versions_search;
DROP INDEX versions_latest;
ALTER TABLE versions DROP COLUMN latest;
ALTER TABLE versions DROP COLUMN search_text;
ALTER TABLE versions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE versions SET seq = rowid;
CREATE UNIQUE INDEX versions_by_seq ON versions (seq);
CREATE TABLE version_seq (n INTEGER NOT NULL);
INSERT INTO version_seq (n) SELECT COALESCE(MAX(seq), 0) FROM versions;
