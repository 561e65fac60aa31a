-- Enrollment under an existing host's name (issue 12): join tokens bound to
-- one host, and enrollments waiting for an admin's approval. The schema
-- matches postgres/migrations/00010_enrollment.sql.

-- +goose Up
-- '' for a token any new host may use.
ALTER TABLE join_tokens ADD COLUMN host_name TEXT NOT NULL DEFAULT '';

CREATE TABLE pending_enrollments (
	id          TEXT PRIMARY KEY,
	host_name   TEXT NOT NULL,
	token_id    TEXT NOT NULL,
	remote      TEXT NOT NULL,
	hostname    TEXT NOT NULL,
	-- The hash of the ticket the agent was given: the approval is its alone.
	ticket_hash TEXT NOT NULL UNIQUE,
	created_at  TEXT NOT NULL,
	approved_at TEXT,
	approved_by TEXT NOT NULL DEFAULT ''
) STRICT;

-- +goose Down
DROP TABLE pending_enrollments;
ALTER TABLE join_tokens DROP COLUMN host_name;
