-- +goose Up
-- Usage events as received (DESIGN §6.4): one row per event, unique by the
-- CloudEvents source and id for its tenant within the event's calendar
-- month (UTC), the unit the PostgreSQL table is partitioned by: one tenant
-- cannot make another's events duplicates by sending their ids first.
CREATE TABLE usage_events (
  month       INTEGER NOT NULL, -- yyyymm of at, UTC
  source      TEXT    NOT NULL,
  id          TEXT    NOT NULL,
  at          INTEGER NOT NULL, -- when it happened, Unix nanoseconds
  received_at INTEGER NOT NULL, -- when the index recorded it
  tenant      TEXT    NOT NULL, -- who used the extension
  owner       TEXT    NOT NULL, -- the tenant that publishes it
  publisher   TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  version     TEXT    NOT NULL,
  digest      TEXT    NOT NULL,
  type        TEXT    NOT NULL, -- pull, install or seats
  quantity    INTEGER NOT NULL,
  PRIMARY KEY (month, tenant, source, id)
);
CREATE INDEX usage_events_publisher_at ON usage_events (publisher, at);
CREATE INDEX usage_events_received ON usage_events (received_at);

-- The daily aggregate the usage API reads: a month of events is a month
-- of these rows, whatever the number of events.
CREATE TABLE usage_daily (
  day       INTEGER NOT NULL, -- yyyymmdd, UTC
  tenant    TEXT    NOT NULL,
  owner     TEXT    NOT NULL,
  publisher TEXT    NOT NULL,
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  events    INTEGER NOT NULL,
  quantity  INTEGER NOT NULL, -- sum
  peak      INTEGER NOT NULL, -- largest single quantity (seats)
  PRIMARY KEY (publisher, name, version, tenant, type, day)
);
CREATE INDEX usage_daily_tenant ON usage_daily (tenant, day);
CREATE INDEX usage_daily_owner ON usage_daily (owner, day);
CREATE INDEX usage_daily_day ON usage_daily (day);
