-- The schema matches sqlite/migrations: queryable columns, plus JSON
-- documents for the rest. json rather than jsonb: documents are written far
-- more often than searched, and json keeps them as written (\u0000 included).
-- Ids and names sort with the "C" collation, byte by byte, as in SQLite, so
-- that paging by id and listing by name do not depend on the server's locale.

-- +goose Up
CREATE TABLE hosts (
	id              text COLLATE "C" PRIMARY KEY,
	name            text NOT NULL,
	location        text NOT NULL,
	labels          json NOT NULL,
	subscription_id text NOT NULL,
	resource_group  text NOT NULL,
	inventory       json NOT NULL,
	state           text NOT NULL,
	last_seen       timestamptz NOT NULL,
	revision        bigint NOT NULL,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
-- Names are unique regardless of case, as ARM's are, so a VM resource id
-- (matched case-insensitively) selects one host.
CREATE UNIQUE INDEX hosts_name ON hosts (lower(name));
CREATE INDEX hosts_location ON hosts (location);
CREATE INDEX hosts_online_last_seen ON hosts (last_seen) WHERE state = 'Online';

CREATE TABLE join_tokens (
	id         text COLLATE "C" PRIMARY KEY,
	hash       text NOT NULL UNIQUE,
	expires_at timestamptz NOT NULL,
	uses_left  integer NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TABLE credentials (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	role       text NOT NULL,
	host_id    text NOT NULL,  -- '' when not bound to a host
	hash       text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL
);
CREATE INDEX credentials_host ON credentials (host_id) WHERE host_id <> '';

CREATE TABLE watchers (
	id           text COLLATE "C" PRIMARY KEY,
	name         text COLLATE "C" NOT NULL UNIQUE,
	location     text NOT NULL UNIQUE,
	max_captures integer NOT NULL,
	created_at   timestamptz NOT NULL
);

-- host_id has no foreign key: a deleted host's captures stay for their files.
CREATE TABLE captures (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	watcher_id text NOT NULL REFERENCES watchers (id),
	host_id    text NOT NULL,
	version    bigint NOT NULL,
	status     text NOT NULL,
	desired    text NOT NULL,
	deleted_at timestamptz,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	doc        json NOT NULL
);
CREATE UNIQUE INDEX captures_live_name ON captures (watcher_id, name) WHERE deleted_at IS NULL;
-- Active captures (tripcap.PacketCapture.Active), counted against the watcher's limit.
CREATE INDEX captures_active ON captures (watcher_id) WHERE deleted_at IS NULL AND status NOT IN ('Stopped', 'Error');
CREATE INDEX captures_host ON captures (host_id);

-- +goose Down
DROP TABLE captures;
DROP TABLE watchers;
DROP TABLE credentials;
DROP TABLE join_tokens;
DROP TABLE hosts;
