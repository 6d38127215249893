-- +goose Up
CREATE INDEX versions_by_repository ON versions (tenant, repository, version);
