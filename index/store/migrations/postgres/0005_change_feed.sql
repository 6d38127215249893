-- +goose Up
DROP INDEX versions_search;
DROP INDEX versions_latest;
ALTER TABLE versions DROP COLUMN latest;
ALTER TABLE versions DROP COLUMN search_text;
ALTER TABLE versions ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE versions SET seq = o.n FROM (SELECT tenant, name, version, row_number() OVER (ORDER BY ingested_at, tenant, name, version) AS n FROM versions) o
  WHERE versions.tenant = o.tenant AND versions.name = o.name AND versions.version = o.version;
CREATE UNIQUE INDEX versions_by_seq ON versions (seq);
CREATE TABLE version_seq (n BIGINT NOT NULL);
INSERT INTO version_seq (n) SELECT COALESCE(MAX(seq), 0) FROM versions;
