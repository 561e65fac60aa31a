-- Network watchers in Azure's scope (issue 13): each belongs to a
-- subscription and a resource group, one per location per subscription
-- (NetworkWatcher_<location> in NetworkWatcherRG unless a user made it),
-- with ARM tags. The name and location are no longer unique alone, so the
-- table is rebuilt, with foreign keys off while captures point at it (hence
-- no transaction around the migration: the pragma is refused inside one;
-- the rebuild runs in its own). The schema matches
-- postgres/migrations/00011_watcher_scope.sql.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;

-- +goose StatementBegin
BEGIN IMMEDIATE;
-- +goose StatementEnd

CREATE TABLE watchers_new (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	location        TEXT NOT NULL,
	-- '' for a watcher from before this migration whose location no host
	-- had: the first subscription to ask for that location's watcher takes it.
	subscription_id TEXT NOT NULL,
	resource_group  TEXT NOT NULL,
	tags            TEXT NOT NULL DEFAULT '{}',
	max_captures    INTEGER NOT NULL,
	created_at      TEXT NOT NULL
) STRICT;

-- A watcher from before belongs to the subscription of the hosts it watched.
INSERT INTO watchers_new (id, name, location, subscription_id, resource_group, max_captures, created_at)
SELECT w.id, w.name, w.location,
	coalesce((SELECT min(h.subscription_id) FROM hosts h WHERE h.location = w.location), ''),
	'NetworkWatcherRG', w.max_captures, w.created_at
FROM watchers w;

DROP TABLE watchers;
ALTER TABLE watchers_new RENAME TO watchers;
CREATE UNIQUE INDEX watchers_location ON watchers (lower(subscription_id), location) WHERE subscription_id <> '';
CREATE UNIQUE INDEX watchers_resource ON watchers (lower(subscription_id), lower(resource_group), lower(name));

-- +goose StatementBegin
COMMIT;
-- +goose StatementEnd

PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;

-- +goose StatementBegin
BEGIN IMMEDIATE;
-- +goose StatementEnd

CREATE TABLE watchers_old (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	location     TEXT NOT NULL UNIQUE,
	max_captures INTEGER NOT NULL,
	created_at   TEXT NOT NULL
) STRICT;
-- One watcher per location and name survives, the oldest.
INSERT INTO watchers_old (id, name, location, max_captures, created_at)
SELECT id, name, location, max_captures, created_at FROM watchers w
WHERE NOT EXISTS (SELECT 1 FROM watchers o WHERE (o.location = w.location OR o.name = w.name) AND o.created_at < w.created_at);
DROP TABLE watchers;
ALTER TABLE watchers_old RENAME TO watchers;

-- +goose StatementBegin
COMMIT;
-- +goose StatementEnd

PRAGMA foreign_keys = ON;
