-- The running captures, newest first (the console's overview, the fleet's
-- "what is capturing now"), read from an index of the active ones instead
-- of a walk through every stored capture in id order. The predicate is
-- sqlstore.ActiveCapture's, word for word, so the planner matches it. The
-- schema matches sqlite/migrations/00013_captures_active_index.sql.

-- +goose Up
CREATE INDEX captures_active_id ON captures (id) WHERE deleted_at IS NULL AND status NOT IN ('Stopped', 'Error');

-- +goose Down
DROP INDEX captures_active_id;
