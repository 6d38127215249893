-- +goose Up
-- The writer state of each signed snapshot scope (DESIGN §6.5): the last
-- TUF version written and every root signed, so every snapshot takes a
-- higher version than the one before, from any replica.
CREATE TABLE snapshot_states (
    scope      TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    state      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
