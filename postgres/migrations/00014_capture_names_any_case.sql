-- Capture names are case-insensitive and case-preserving, as ARM's are
-- (issue 13): within a watcher no two live captures may have names that
-- differ only in case, and lookups by name ignore case
-- (sqlstore.CaptureWhere). The live-name index of 00012 becomes one on
-- lower(name), with 00012's predicate (a scale set's sessions share its
-- name, so they stay out). Two live captures a server before this one let
-- differ only in case keep their rows, files and ids: every one but the
-- oldest (lowest id: ids are time-ordered) gets '-' and its id appended
-- (its name cut to fit 80 characters), and its sessions follow it. The
-- schema matches sqlite/migrations/00014_capture_names_any_case.sql.

-- +goose Up
UPDATE captures SET name = substr(name, 1, 53) || '-' || id
WHERE deleted_at IS NULL AND scale_set_id = '' AND EXISTS (
	SELECT 1 FROM captures o
	WHERE o.watcher_id = captures.watcher_id AND lower(o.name) = lower(captures.name) AND o.id < captures.id
		AND o.deleted_at IS NULL AND o.scale_set_id = '');
UPDATE captures SET name = (SELECT p.name FROM captures p WHERE p.id = captures.scale_set_id)
WHERE scale_set_id <> '' AND name <> (SELECT p.name FROM captures p WHERE p.id = captures.scale_set_id);
DROP INDEX captures_live_name;
CREATE UNIQUE INDEX captures_live_name ON captures (watcher_id, lower(name)) WHERE deleted_at IS NULL AND scale_set_id = '';

-- +goose Down
DROP INDEX captures_live_name;
CREATE UNIQUE INDEX captures_live_name ON captures (watcher_id, name) WHERE deleted_at IS NULL AND scale_set_id = '';
