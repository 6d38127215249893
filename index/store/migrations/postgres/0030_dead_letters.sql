-- +goose Up
-- Subscription deliveries that failed for good (index/subscriptions.go):
-- one row per subscription and event, for the operator to see and resend.
CREATE TABLE dead_letters (
  id           BIGSERIAL PRIMARY KEY,
  subscription TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  type         TEXT NOT NULL,
  subject      TEXT NOT NULL DEFAULT '',
  url          TEXT NOT NULL,
  attempts     INTEGER NOT NULL,
  error        TEXT NOT NULL,
  event        TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  UNIQUE (subscription, event_id)
);
