-- +goose Up
CREATE INDEX versions_search ON versions (latest, name, tenant, search_text, kind, publisher, license, reviewed, visibility);
