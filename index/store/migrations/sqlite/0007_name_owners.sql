-- +goose Up
CREATE TABLE name_owners (
  name       TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  repository TEXT NOT NULL,
  claimed_at INTEGER NOT NULL
);
INSERT INTO name_owners (name, tenant, repository, claimed_at)
  SELECT v.name, v.tenant, v.repository, v.ingested_at FROM versions v
  WHERE v.seq = (SELECT MIN(w.seq) FROM versions w WHERE w.name = v.name);
