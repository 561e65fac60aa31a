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
-- The files of captures made before: indexed as the store indexes new ones.
INSERT INTO capture_files (id, capture_id, name, host_id, capture_name, alert_id, stored, created_at, deleted_at, doc)
SELECT lower(hex(randomblob(16))), id, json_extract(fv, '$.name'), host_id, name, '',
	CASE WHEN json_extract(fv, '$.stored') THEN 1 ELSE 0 END, created, NULL,
	json_patch(fv, json_object('captureId', id, 'captureName', name, 'watcherId', watcher_id, 'hostId', host_id,
		'captureDeleted', json(CASE WHEN deleted_at IS NULL THEN 'false' ELSE 'true' END), 'createdAt', created))
FROM (SELECT *, CASE WHEN coalesce(fc, '0001-') LIKE '0001-%' THEN capture_created
		-- strftime keeps milliseconds only: the fraction is carried over as text, to the nanosecond.
		ELSE strftime('%Y-%m-%dT%H:%M:%S', fc) || '.' || substr(CASE WHEN substr(fc, 20, 1) = '.'
			THEN substr(fc, 21, length(fc) - 20 - CASE WHEN fc LIKE '%Z' THEN 1 ELSE 6 END) ELSE '' END || '000000000', 1, 9) || 'Z'
		END AS created
	FROM (SELECT c.id, c.name, c.watcher_id, c.host_id, c.deleted_at, c.created_at AS capture_created, f.value AS fv,
			json_extract(f.value, '$.createdAt') AS fc
		FROM captures c, json_each(c.doc, '$.files') f))
WHERE true
ON CONFLICT (capture_id, name) DO NOTHING;

-- +goose Down
DROP TABLE capture_files;
