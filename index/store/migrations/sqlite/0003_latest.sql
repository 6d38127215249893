-- +goose Up
ALTER TABLE versions ADD COLUMN latest INTEGER NOT NULL DEFAULT 0;
UPDATE versions SET latest = (version = (SELECT n.version FROM versions n WHERE n.tenant = versions.tenant AND n.name = versions.name ORDER BY n.ingested_at DESC, n.version DESC LIMIT 1));
CREATE INDEX versions_latest ON versions (latest, name, tenant);
