-- +goose Up
-- The monthly aggregate beside the daily one, written in the same
-- transaction: a month's usage reads at most a thirtieth of the rows.
CREATE TABLE usage_monthly (
  month     INTEGER NOT NULL, -- yyyymm, UTC
  tenant    TEXT    NOT NULL,
  owner     TEXT    NOT NULL,
  publisher TEXT    NOT NULL,
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  events    INTEGER  NOT NULL,
  quantity  INTEGER  NOT NULL,
  peak      INTEGER  NOT NULL,
  PRIMARY KEY (publisher, name, version, tenant, type, month)
);
CREATE INDEX usage_monthly_tenant ON usage_monthly (tenant, month);
CREATE INDEX usage_monthly_owner ON usage_monthly (owner, month);
CREATE INDEX usage_monthly_month ON usage_monthly (month);
INSERT INTO usage_monthly (month, tenant, owner, publisher, name, version, type, events, quantity, peak)
  SELECT day / 100, tenant, MIN(owner), publisher, name, version, type, SUM(events), SUM(quantity), MAX(peak)
  FROM usage_daily GROUP BY day / 100, tenant, publisher, name, version, type;
