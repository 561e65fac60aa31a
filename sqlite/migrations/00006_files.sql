-- The file index (tripcap.FileStore): one row per file of a capture,
-- written in the transaction that writes the capture's file records, so a
-- file stays listable and downloadable after its capture is deleted or
-- replaced. doc is the JSON tripcap.StoredFile; the columns are what
-- listings filter on. The schema matches postgres/migrations/00006_files.sql.

-- +goose Up
CREATE TABLE capture_files (
	id           TEXT PRIMARY KEY,
	capture_id   TEXT NOT NULL,
	name         TEXT NOT NULL,
	host_id      TEXT NOT NULL,
	capture_name TEXT NOT NULL,
	alert_id     TEXT NOT NULL,
	stored       INTEGER NOT NULL,
	created_at   TEXT NOT NULL,
	deleted_at   TEXT,
	doc          TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX capture_files_capture ON capture_files (capture_id, name);
CREATE INDEX capture_files_host ON capture_files (host_id, created_at);
CREATE INDEX capture_files_created ON capture_files (created_at);
CREATE INDEX capture_files_capture_name ON capture_files (capture_name);
CREATE INDEX capture_files_alert ON capture_files (alert_id) WHERE alert_id <> '';

-- +goose Down
DROP TABLE capture_files;
