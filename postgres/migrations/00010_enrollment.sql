-- Enrollment under an existing host's name (issue 12): join tokens bound to
-- one host, and enrollments waiting for an admin's approval. The schema
-- matches sqlite/migrations/00010_enrollment.sql.

-- +goose Up
-- '' for a token any new host may use.
ALTER TABLE join_tokens ADD COLUMN host_name text NOT NULL DEFAULT '';

CREATE TABLE pending_enrollments (
	id          text COLLATE "C" PRIMARY KEY,
	host_name   text NOT NULL,
	token_id    text NOT NULL,
	remote      text NOT NULL,
	hostname    text NOT NULL,
	-- The hash of the ticket the agent was given: the approval is its alone.
	ticket_hash text NOT NULL UNIQUE,
	created_at  timestamptz NOT NULL,
	approved_at timestamptz,
	approved_by text NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE pending_enrollments;
ALTER TABLE join_tokens DROP COLUMN host_name;
