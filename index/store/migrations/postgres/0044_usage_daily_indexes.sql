-- +goose Up
-- usage_daily's secondary indexes served the usage answers, which read
-- the roll-ups since migration 0043; statements read usage_daily by
-- publisher (its key's first column) and the impact's users read the
-- monthly roll-up by name. Every new day of a version and tenant wrote
-- four index entries where one is needed (docs/performance.md, "Usage
-- ingest with the roll-ups").
DROP INDEX usage_daily_tenant;
DROP INDEX usage_daily_owner;
DROP INDEX usage_daily_day;
