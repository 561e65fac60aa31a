-- Responders (alert-triggered capture functions), their function keys and
-- the record of every invocation. The schema matches
-- sqlite/migrations/00004_responders.sql: the columns listings filter,
-- sort and enforce uniqueness on, plus the whole object as a json document.

-- +goose Up
CREATE TABLE responders (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	doc        json NOT NULL
);
-- Names are unique regardless of case: /api/functions/{name} finds one.
CREATE UNIQUE INDEX responders_name ON responders (lower(name));

-- Keys go with their responder; only hashes are kept.
CREATE TABLE responder_keys (
	id           text COLLATE "C" PRIMARY KEY,
	responder_id text COLLATE "C" NOT NULL REFERENCES responders (id) ON DELETE CASCADE,
	name         text NOT NULL,
	hash         text COLLATE "C" NOT NULL,
	created_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX responder_keys_hash ON responder_keys (hash);
CREATE UNIQUE INDEX responder_keys_name ON responder_keys (responder_id, name);

-- Runs outlive their responder (no foreign key): they are the audit record.
CREATE TABLE responder_runs (
	id              text COLLATE "C" PRIMARY KEY,
	responder_id    text COLLATE "C" NOT NULL,
	idempotency_key text COLLATE "C" NOT NULL,
	alert_key       text COLLATE "C" NOT NULL,
	received_at     timestamptz NOT NULL,
	doc             json NOT NULL
);
-- A redelivered alert (same key) is refused atomically, across replicas.
CREATE UNIQUE INDEX responder_runs_idempotency ON responder_runs (responder_id, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX responder_runs_received ON responder_runs (responder_id, received_at, id);
CREATE INDEX responder_runs_alert ON responder_runs (responder_id, alert_key, received_at);

-- +goose Down
DROP TABLE responder_runs;
DROP TABLE responder_keys;
DROP TABLE responders;
