-- +goose Up
-- Closed revenue-share statements (index/billing): one per publisher and
-- month, frozen. The primary key makes the first close win when replicas
-- race; the trigger keeps what was signed from ever changing.
CREATE TABLE statements (
  publisher   TEXT NOT NULL,
  period      TEXT NOT NULL,
  cutoff      BIGINT NOT NULL,
  closed_at   BIGINT NOT NULL,
  body        BYTEA NOT NULL,
  signature   TEXT NOT NULL,
  signer      TEXT NOT NULL,
  reference   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (publisher, period)
);
-- +goose StatementBegin
CREATE FUNCTION statements_frozen() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.publisher <> OLD.publisher OR NEW.period <> OLD.period OR NEW.cutoff <> OLD.cutoff
     OR NEW.closed_at <> OLD.closed_at OR NEW.body <> OLD.body OR NEW.signature <> OLD.signature OR NEW.signer <> OLD.signer THEN
    RAISE EXCEPTION 'a closed statement is immutable';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER statements_frozen BEFORE UPDATE OR DELETE ON statements FOR EACH ROW EXECUTE FUNCTION statements_frozen();
