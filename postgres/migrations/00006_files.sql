-- The file index (tripcap.FileStore): one row per file of a capture,
-- written in the transaction that writes the capture's file records, so a
-- file stays listable and downloadable after its capture is deleted or
-- replaced. doc is the JSON tripcap.StoredFile; the columns are what
-- listings filter on. The schema matches sqlite/migrations/00006_files.sql.

-- +goose Up
CREATE TABLE capture_files (
	id           text COLLATE "C" PRIMARY KEY,
	capture_id   text NOT NULL,
	name         text NOT NULL,
	host_id      text NOT NULL,
	capture_name text NOT NULL,
	alert_id     text NOT NULL,
	stored       boolean NOT NULL,
	created_at   timestamptz NOT NULL,
	deleted_at   timestamptz,
	doc          json NOT NULL
);
CREATE UNIQUE INDEX capture_files_capture ON capture_files (capture_id, name);
CREATE INDEX capture_files_host ON capture_files (host_id, created_at);
CREATE INDEX capture_files_created ON capture_files (created_at);
CREATE INDEX capture_files_capture_name ON capture_files (capture_name);
CREATE INDEX capture_files_alert ON capture_files (alert_id) WHERE alert_id <> '';

-- +goose Down
DROP TABLE capture_files;
