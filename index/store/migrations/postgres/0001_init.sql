-- +goose Up
CREATE TABLE versions (
  tenant      TEXT NOT NULL,
  name        TEXT NOT NULL,
  version     TEXT NOT NULL,
  repository  TEXT NOT NULL,
  digest      TEXT NOT NULL,
  kind        TEXT NOT NULL,
  publisher   TEXT NOT NULL,
  title       TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  keywords    TEXT NOT NULL DEFAULT '',
  license     TEXT NOT NULL DEFAULT '',
  factory     TEXT NOT NULL DEFAULT '',
  visibility  TEXT NOT NULL,
  signed      BOOLEAN NOT NULL DEFAULT FALSE,
  reviewed    BOOLEAN NOT NULL DEFAULT FALSE,
  allowed     BOOLEAN NOT NULL DEFAULT FALSE,
  lifecycle   TEXT NOT NULL DEFAULT '',
  descriptor  TEXT,
  decision    TEXT,
  evidence    TEXT,
  ingested_at BIGINT NOT NULL,
  search_text TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, name, version)
);
CREATE INDEX versions_by_name ON versions (tenant, name, ingested_at);
CREATE TABLE alerts (
  id         BIGSERIAL PRIMARY KEY,
  tenant     TEXT NOT NULL,
  type       TEXT NOT NULL,
  name       TEXT NOT NULL,
  version    TEXT NOT NULL,
  repository TEXT NOT NULL,
  old_digest TEXT NOT NULL DEFAULT '',
  new_digest TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (tenant, type, name, version, new_digest)
);
CREATE TABLE events (
  id      TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL
);
CREATE TABLE tokens (
  hash       TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  roles      TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
