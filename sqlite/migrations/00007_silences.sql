-- Versions of alert rules and action groups, for conditional updates
-- (If-Match), as responders have since 00005; and silences, which mute
-- alerts for a period. The schema matches postgres/migrations/00007_silences.sql.

-- +goose Up
ALTER TABLE alert_rules ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE action_groups ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE silences (
	id         TEXT PRIMARY KEY,
	starts_at  TEXT NOT NULL,
	ends_at    TEXT NOT NULL,
	created_at TEXT NOT NULL,
	doc        TEXT NOT NULL  -- JSON tripcap.Silence
) STRICT;
-- Each alert transition looks up the silences active then.
CREATE INDEX silences_ends_at ON silences (ends_at, starts_at);

-- +goose Down
DROP TABLE silences;
ALTER TABLE action_groups DROP COLUMN version;
ALTER TABLE alert_rules DROP COLUMN version;
