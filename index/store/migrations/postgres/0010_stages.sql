-- +goose Up
-- A version's stage (its source's: internal, enterprise or public) and
-- whether it is quarantined: it has not passed its stage's policy and is
-- visible only to its own tenant and to reviewers (DESIGN §6.2).
ALTER TABLE versions ADD COLUMN stage TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN quarantined BOOLEAN NOT NULL DEFAULT FALSE;
