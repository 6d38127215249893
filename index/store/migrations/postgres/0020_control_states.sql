-- +goose Up
-- The index's control state (DESIGN §6.3, issue 13): per control-list
-- reference and operator key set, the highest sequence accepted, the
-- digest of the list accepted under it and the list itself, so that an
-- index restarted, or another replica, refuses an older list the registry
-- serves. Only ever raised (PutControlState).
CREATE TABLE control_states (
    ref        TEXT NOT NULL,
    keys       TEXT NOT NULL,
    sequence   BIGINT NOT NULL,
    digest     TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    list       TEXT NOT NULL,
    PRIMARY KEY (ref, keys)
);
