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
-- without a sort, and each index ends in that order too. No index holds
-- a count, so adding to a row's counts changes no index (a HOT update).
-- owner is the owner of the name when the row was made (a name has one
-- owner). The text columns compare by bytes (COLLATE "C"): the answer's
-- order is the same as the database's C.UTF-8 (code points) for the
-- names, versions and tenants the index accepts, and sorting and
-- indexing by bytes costs a fraction of going through the locale.
CREATE TABLE usage_rollup_daily (
  publisher TEXT    COLLATE "C" NOT NULL,
  day       INTEGER NOT NULL, -- yyyymmdd, UTC
  name      TEXT    COLLATE "C" NOT NULL,
  version   TEXT    COLLATE "C" NOT NULL,
  tenant    TEXT    COLLATE "C" NOT NULL,
  owner     TEXT    COLLATE "C" NOT NULL,
  pulls     BIGINT  NOT NULL, -- sum of the pulls' quantities
  installs  BIGINT  NOT NULL, -- sum of the installs' quantities
  seats     BIGINT  NOT NULL, -- largest seat report
  events    BIGINT  NOT NULL, -- events of every type
  PRIMARY KEY (publisher, day, name, version, tenant)
);
CREATE INDEX usage_rollup_daily_tenant ON usage_rollup_daily (tenant, day, name, version);
CREATE INDEX usage_rollup_daily_owner ON usage_rollup_daily (owner, day, name, version, tenant);
CREATE INDEX usage_rollup_daily_name ON usage_rollup_daily (name, day, version, tenant);
CREATE INDEX usage_rollup_daily_day ON usage_rollup_daily (day, name, version, tenant);

-- The same by month (yyyymm), in place of usage_monthly (one row per type).
CREATE TABLE usage_rollup_monthly (
  publisher TEXT    COLLATE "C" NOT NULL,
  month     INTEGER NOT NULL, -- yyyymm, UTC
  name      TEXT    COLLATE "C" NOT NULL,
  version   TEXT    COLLATE "C" NOT NULL,
  tenant    TEXT    COLLATE "C" NOT NULL,
  owner     TEXT    COLLATE "C" NOT NULL,
  pulls     BIGINT  NOT NULL,
  installs  BIGINT  NOT NULL,
  seats     BIGINT  NOT NULL,
  events    BIGINT  NOT NULL,
  PRIMARY KEY (publisher, month, name, version, tenant)
);
CREATE INDEX usage_rollup_monthly_tenant ON usage_rollup_monthly (tenant, month, name, version);
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
