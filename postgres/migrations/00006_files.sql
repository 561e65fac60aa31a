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
-- The files of captures made before: indexed as the store indexes new ones.
INSERT INTO capture_files (id, capture_id, name, host_id, capture_name, alert_id, stored, created_at, deleted_at, doc)
SELECT md5(random()::text || clock_timestamp()::text || id || fname), id, fname, host_id, name, '', stored, created, NULL,
	(fv::jsonb || jsonb_build_object('captureId', id, 'captureName', name, 'watcherId', watcher_id, 'hostId', host_id,
		'captureDeleted', deleted_at IS NOT NULL, 'createdAt', created))::json
FROM (SELECT c.id, c.name, c.watcher_id, c.host_id, c.deleted_at, f AS fv, f->>'name' AS fname,
		coalesce((f->>'stored')::boolean, false) AS stored,
		CASE WHEN coalesce(f->>'createdAt', '0001-') LIKE '0001-%' THEN c.created_at
			ELSE (f->>'createdAt')::timestamptz END AS created
	FROM captures c, json_array_elements(CASE WHEN json_typeof(c.doc->'files') = 'array' THEN c.doc->'files' ELSE '[]'::json END) f) x
ON CONFLICT (capture_id, name) DO NOTHING;

-- +goose Down
DROP TABLE capture_files;
