-- Users and service principals, their API tokens and role assignments,
-- the keys that sign the token endpoint's JWTs, and the revoked bootstrap
-- credentials. A principal's tokens and assignments go with it. The schema
-- matches postgres/migrations/00008_identities.sql.

-- +goose Up
CREATE TABLE principals (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	name        TEXT NOT NULL,
	secret_hash TEXT NOT NULL,  -- sealed: argon2id (users), SHA-256 (service principals)
	created_by  TEXT NOT NULL,
	created_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX principals_name ON principals (lower(name));

CREATE TABLE api_tokens (
	id           TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	hash         TEXT NOT NULL UNIQUE,
	expires_at   TEXT NOT NULL,
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);

CREATE TABLE role_assignments (
	id           TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	role         TEXT NOT NULL,
	scope        TEXT NOT NULL,
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	UNIQUE (principal_id, role, scope)
) STRICT;

CREATE TABLE signing_keys (
	kid          TEXT PRIMARY KEY,
	algorithm    TEXT NOT NULL,
	private_key  TEXT NOT NULL,  -- sealed
	created_at   TEXT NOT NULL,
	retire_after TEXT NOT NULL
) STRICT;

CREATE TABLE revoked_credentials (
	hash       TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	revoked_at TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE revoked_credentials;
DROP TABLE signing_keys;
DROP TABLE role_assignments;
DROP TABLE api_tokens;
DROP TABLE principals;
