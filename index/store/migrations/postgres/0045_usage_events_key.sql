-- +goose Up
-- An event's identity is kept once, in usage_event_keys (migration 0042):
-- RecordUsage inserts a raw event only after inserting its key, in the
-- same transaction, so usage_events' own primary key checked nothing the
-- key table had not and cost every event one more index entry in its
-- month's partition (docs/performance.md, "Usage ingest on a fresh
-- machine"). SQLite keeps its key: dropping it means rebuilding the table,
-- and its ingest is well above its aim.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
