-- +goose Up
-- The usage roll-ups GET /api/v1/usage and mkt usage read: one row per
-- day (or month), version and tenant, the event types side by side
-- (pulls, installs, seats, events), which is exactly one row of a usage
-- answer. usage_daily, one row per type, stays for statements and the
-- impact's users; the answer from it needed a GROUP BY over twice the
-- rows and a sort (docs/performance.md, "Usage metering"). RecordUsage
-- writes both in the batch's transaction.
--
-- The key starts with publisher and then the period, so one publisher's
-- usage is read in the answer's order (period, name, version, tenant)
-- without a sort; WITHOUT ROWID keeps the rows in that order. owner is
-- the owner of the name when the row was made (a name has one owner).
CREATE TABLE usage_rollup_daily (
  publisher TEXT    NOT NULL,
  day       INTEGER NOT NULL, -- yyyymmdd, UTC
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  tenant    TEXT    NOT NULL,
  owner     TEXT    NOT NULL,
  pulls     INTEGER NOT NULL, -- sum of the pulls' quantities
  installs  INTEGER NOT NULL, -- sum of the installs' quantities
  seats     INTEGER NOT NULL, -- largest seat report
  events    INTEGER NOT NULL, -- events of every type
  PRIMARY KEY (publisher, day, name, version, tenant)
) WITHOUT ROWID;
-- A tenant's own usage, in the answer's order, with the counts (covering:
-- no lookup into the table per row).
CREATE INDEX usage_rollup_daily_tenant ON usage_rollup_daily (tenant, day, name, version, pulls, installs, seats, events);
CREATE INDEX usage_rollup_daily_owner ON usage_rollup_daily (owner, day, name, version, tenant);
CREATE INDEX usage_rollup_daily_name ON usage_rollup_daily (name, day, version, tenant);
CREATE INDEX usage_rollup_daily_day ON usage_rollup_daily (day, name, version, tenant);

-- The same by month (yyyymm), in place of usage_monthly (one row per type).
CREATE TABLE usage_rollup_monthly (
  publisher TEXT    NOT NULL,
  month     INTEGER NOT NULL, -- yyyymm, UTC
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  tenant    TEXT    NOT NULL,
  owner     TEXT    NOT NULL,
  pulls     INTEGER NOT NULL,
  installs  INTEGER NOT NULL,
  seats     INTEGER NOT NULL,
  events    INTEGER NOT NULL,
  PRIMARY KEY (publisher, month, name, version, tenant)
) WITHOUT ROWID;
CREATE INDEX usage_rollup_monthly_tenant ON usage_rollup_monthly (tenant, month, name, version, pulls, installs, seats, events);
CREATE INDEX usage_rollup_monthly_owner ON usage_rollup_monthly (owner, month, name, version, tenant);
CREATE INDEX usage_rollup_monthly_name ON usage_rollup_monthly (name, month, version, tenant);
CREATE INDEX usage_rollup_monthly_month ON usage_rollup_monthly (month, name, version, tenant);

INSERT INTO usage_rollup_daily (publisher, day, name, version, tenant, owner, pulls, installs, seats, events)
  SELECT publisher, day, name, version, tenant, MIN(owner),
    SUM(CASE WHEN type = 'pull' THEN quantity ELSE 0 END), SUM(CASE WHEN type = 'install' THEN quantity ELSE 0 END),
    MAX(CASE WHEN type = 'seats' THEN peak ELSE 0 END), SUM(events)
  FROM usage_daily GROUP BY publisher, day, name, version, tenant;
INSERT INTO usage_rollup_monthly (publisher, month, name, version, tenant, owner, pulls, installs, seats, events)
  SELECT publisher, day / 100, name, version, tenant, MIN(owner), SUM(pulls), SUM(installs), MAX(seats), SUM(events)
  FROM usage_rollup_daily GROUP BY publisher, day / 100, name, version, tenant;
DROP TABLE usage_monthly;
