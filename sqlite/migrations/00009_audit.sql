-- The audit log: who did what to which resource, from where, when, and how
-- it ended. Listings filter on the columns and sort by id (ids sort by
-- time); the event is kept whole in doc. The schema matches
-- postgres/migrations/00009_audit.sql.

-- +goose Up
CREATE TABLE audit_events (
	id             TEXT PRIMARY KEY,
	time           TEXT NOT NULL,
	principal_id   TEXT NOT NULL,
	principal_name TEXT NOT NULL,
	action         TEXT NOT NULL,
	resource       TEXT NOT NULL,
	result         TEXT NOT NULL,
	doc            TEXT NOT NULL  -- JSON tripcap.AuditEvent
) STRICT;
-- Retention deletes by time; since/until select by it.
CREATE INDEX audit_events_time ON audit_events (time);
-- "What did this principal do", by id or by name, newest first.
CREATE INDEX audit_events_principal_id ON audit_events (principal_id, id);
CREATE INDEX audit_events_principal_name ON audit_events (principal_name, id);

-- +goose Down
DROP TABLE audit_events;
