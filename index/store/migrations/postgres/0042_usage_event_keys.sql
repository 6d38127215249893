-- +goose Up
-- The keys of the usage events recorded: an event is identified by its
-- tenant, CloudEvents source and id whatever its time (issue 12: reports
-- are idempotent by event id), so a retry whose time moved into another
-- month is still the same event. usage_events' own key holds the month
-- (PostgreSQL partitions it by month), so it cannot say this alone; this
-- table is not partitioned and is written in the same transaction as the
-- raw event and the aggregates (RecordUsage). month is the month the
-- event was recorded under, kept so an operator can prune the keys of
-- months long archived (docs/billing.md).
CREATE TABLE usage_event_keys (
  tenant TEXT    NOT NULL,
  source TEXT    NOT NULL,
  id     TEXT    NOT NULL,
  month  INTEGER NOT NULL, -- yyyymm, UTC
  PRIMARY KEY (tenant, source, id)
);
-- The events already recorded; a key recorded in several months before
-- this migration (the flaw it fixes) keeps its first.
INSERT INTO usage_event_keys (tenant, source, id, month)
  SELECT tenant, source, id, MIN(month) FROM usage_events GROUP BY tenant, source, id;
