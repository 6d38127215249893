-- +goose Up
-- Usage events as received (DESIGN §6.4): one row per event, unique by the
-- CloudEvents source and id for its tenant within the event's calendar
-- month (UTC): one tenant cannot make another's events duplicates by
-- sending their ids first.
-- Partitioned by that month (yyyymm) so that an operator can detach and
-- archive old months (docs/billing.md); the store creates each month's
-- partition, usage_events_yyyymm, before the first event of that month.
CREATE TABLE usage_events (
  month       INTEGER NOT NULL,
  source      TEXT    NOT NULL,
  id          TEXT    NOT NULL,
  at          BIGINT  NOT NULL,
  received_at BIGINT  NOT NULL,
  tenant      TEXT    NOT NULL,
  owner       TEXT    NOT NULL,
  publisher   TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  version     TEXT    NOT NULL,
  digest      TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  quantity    BIGINT  NOT NULL,
  PRIMARY KEY (month, tenant, source, id)
) PARTITION BY RANGE (month);
CREATE INDEX usage_events_publisher_at ON usage_events (publisher, at);
CREATE INDEX usage_events_received ON usage_events (received_at);

CREATE TABLE usage_daily (
  day       INTEGER NOT NULL,
  tenant    TEXT    NOT NULL,
  owner     TEXT    NOT NULL,
  publisher TEXT    NOT NULL,
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  events    BIGINT  NOT NULL,
  quantity  BIGINT  NOT NULL,
  peak      BIGINT  NOT NULL,
  PRIMARY KEY (publisher, name, version, tenant, type, day)
);
CREATE INDEX usage_daily_tenant ON usage_daily (tenant, day);
CREATE INDEX usage_daily_owner ON usage_daily (owner, day);
CREATE INDEX usage_daily_day ON usage_daily (day);
