-- +goose Up
-- Closed revenue-share statements (index/billing): one per publisher and
-- month, frozen. The primary key makes the first close win when replicas
-- race; the triggers keep what was signed from ever changing.
CREATE TABLE statements (
  publisher   TEXT NOT NULL,
  period      TEXT NOT NULL,
  cutoff      INTEGER NOT NULL,
  closed_at   INTEGER NOT NULL,
  body        BLOB NOT NULL,
  signature   TEXT NOT NULL,
  signer      TEXT NOT NULL,
  reference   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (publisher, period)
);
-- +goose StatementBegin
CREATE TRIGGER statements_frozen BEFORE UPDATE OF publisher, period, cutoff, closed_at, body, signature, signer ON statements
BEGIN
  SELECT RAISE(ABORT, 'a closed statement is immutable');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER statements_kept BEFORE DELETE ON statements
BEGIN
  SELECT RAISE(ABORT, 'a closed statement is immutable');
END;
-- +goose StatementEnd
