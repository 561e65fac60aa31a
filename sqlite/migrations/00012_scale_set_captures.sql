-- Scale-set captures (issue 13): a capture whose target is a scale set
-- (AzureVMSS) is one row without a host, and one session row per selected
-- host naming it in scale_set_id. Sessions share the capture's name, so the
-- live-name index covers the other rows only. The schema matches
-- postgres/migrations/00012_scale_set_captures.sql.

-- +goose Up
-- '' for a capture that is no scale set's session.
ALTER TABLE captures ADD COLUMN scale_set_id TEXT NOT NULL DEFAULT '';
DROP INDEX captures_live_name;
CREATE UNIQUE INDEX captures_live_name ON captures (watcher_id, name) WHERE deleted_at IS NULL AND scale_set_id = '';
CREATE INDEX captures_scale_set ON captures (scale_set_id) WHERE scale_set_id <> '';

-- +goose Down
DROP INDEX captures_scale_set;
DROP INDEX captures_live_name;
CREATE UNIQUE INDEX captures_live_name ON captures (watcher_id, name) WHERE deleted_at IS NULL;
ALTER TABLE captures DROP COLUMN scale_set_id;
