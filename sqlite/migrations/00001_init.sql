-- The schema matches postgres/migrations: queryable columns, plus JSON
-- documents (TEXT here) for the rest. Times are UTC text with nine fractional
-- digits (sqlite.timeFormat), so they compare correctly as text.

-- +goose Up
CREATE TABLE hosts (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	location        TEXT NOT NULL,
	labels          TEXT NOT NULL,  -- JSON object
	subscription_id TEXT NOT NULL,
	resource_group  TEXT NOT NULL,
	inventory       TEXT NOT NULL,  -- JSON tripcap.Inventory
	state           TEXT NOT NULL,
	last_seen       TEXT NOT NULL,
	revision        INTEGER NOT NULL,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL
) STRICT;
-- Names are unique regardless of case, as ARM's are, so a VM resource id
-- (matched case-insensitively) selects one host.
CREATE UNIQUE INDEX hosts_name ON hosts (lower(name));
CREATE INDEX hosts_location ON hosts (location);
CREATE INDEX hosts_online_last_seen ON hosts (last_seen) WHERE state = 'Online';

CREATE TABLE join_tokens (
	id         TEXT PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	expires_at TEXT NOT NULL,
	uses_left  INTEGER NOT NULL,
	created_at TEXT NOT NULL
) STRICT;

CREATE TABLE credentials (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	role       TEXT NOT NULL,
	host_id    TEXT NOT NULL,  -- '' when not bound to a host
	hash       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
) STRICT;
CREATE INDEX credentials_host ON credentials (host_id) WHERE host_id <> '';

CREATE TABLE watchers (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	location     TEXT NOT NULL UNIQUE,
	max_captures INTEGER NOT NULL,
	created_at   TEXT NOT NULL
) STRICT;

-- host_id has no foreign key: a deleted host's captures stay for their files.
CREATE TABLE captures (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	watcher_id TEXT NOT NULL REFERENCES watchers (id),
	host_id    TEXT NOT NULL,
	version    INTEGER NOT NULL,
	status     TEXT NOT NULL,
	desired    TEXT NOT NULL,
	deleted_at TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	doc        TEXT NOT NULL  -- JSON sqldoc.Capture
) STRICT;
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
