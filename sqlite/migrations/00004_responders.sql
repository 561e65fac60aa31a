-- Responders (alert-triggered capture functions), their function keys and
-- the record of every invocation. The schema matches
-- postgres/migrations/00004_responders.sql: the columns listings filter,
-- sort and enforce uniqueness on, plus the whole object as a JSON document.

-- +goose Up
CREATE TABLE responders (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	doc        TEXT NOT NULL  -- JSON tripcap.Responder
) STRICT;
-- Names are unique regardless of case: /api/functions/{name} finds one.
CREATE UNIQUE INDEX responders_name ON responders (lower(name));

-- Keys go with their responder; only hashes are kept.
CREATE TABLE responder_keys (
	id           TEXT PRIMARY KEY,
	responder_id TEXT NOT NULL REFERENCES responders (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	hash         TEXT NOT NULL UNIQUE,
	created_at   TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX responder_keys_name ON responder_keys (responder_id, name);

-- Runs outlive their responder (no foreign key): they are the audit record.
CREATE TABLE responder_runs (
	id              TEXT PRIMARY KEY,
	responder_id    TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	alert_key       TEXT NOT NULL,
	received_at     TEXT NOT NULL,
	doc             TEXT NOT NULL  -- JSON tripcap.ResponderRun
) STRICT;
-- A redelivered alert (same key) is refused atomically, across replicas.
CREATE UNIQUE INDEX responder_runs_idempotency ON responder_runs (responder_id, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX responder_runs_received ON responder_runs (responder_id, received_at, id);
CREATE INDEX responder_runs_alert ON responder_runs (responder_id, alert_key, received_at);

-- +goose Down
DROP TABLE responder_runs;
DROP TABLE responder_keys;
DROP TABLE responders;
