-- Users and service principals, their API tokens and role assignments,
-- the keys that sign the token endpoint's JWTs, and the revoked bootstrap
-- credentials. A principal's tokens and assignments go with it. The schema
-- matches sqlite/migrations/00008_identities.sql.

-- +goose Up
CREATE TABLE principals (
	id          text COLLATE "C" PRIMARY KEY,
	kind        text NOT NULL,
	name        text NOT NULL,
	secret_hash text NOT NULL,  -- sealed: argon2id (users), SHA-256 (service principals)
	created_by  text NOT NULL,
	created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX principals_name ON principals (lower(name));

CREATE TABLE api_tokens (
	id           text COLLATE "C" PRIMARY KEY,
	principal_id text COLLATE "C" NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	name         text NOT NULL,
	hash         text NOT NULL UNIQUE,
	expires_at   timestamptz NOT NULL,
	created_by   text NOT NULL,
	created_at   timestamptz NOT NULL
);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);

CREATE TABLE role_assignments (
	id           text COLLATE "C" PRIMARY KEY,
	principal_id text COLLATE "C" NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	role         text NOT NULL,
	scope        text NOT NULL,
	created_by   text NOT NULL,
	created_at   timestamptz NOT NULL,
	UNIQUE (principal_id, role, scope)
);

CREATE TABLE signing_keys (
	kid          text COLLATE "C" PRIMARY KEY,
	algorithm    text NOT NULL,
	private_key  text NOT NULL,  -- sealed
	created_at   timestamptz NOT NULL,
	retire_after timestamptz NOT NULL
);

CREATE TABLE revoked_credentials (
	hash       text PRIMARY KEY,
	role       text NOT NULL,
	revoked_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE revoked_credentials;
DROP TABLE signing_keys;
DROP TABLE role_assignments;
DROP TABLE api_tokens;
DROP TABLE principals;
