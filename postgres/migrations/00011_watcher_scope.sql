-- Network watchers in Azure's scope (issue 13): each belongs to a
-- subscription and a resource group, one per location per subscription
-- (NetworkWatcher_<location> in NetworkWatcherRG unless a user made it),
-- with ARM tags. The schema matches sqlite/migrations/00011_watcher_scope.sql.

-- +goose Up
-- '' for a watcher from before this migration whose location no host had:
-- the first subscription to ask for that location's watcher takes it.
ALTER TABLE watchers ADD COLUMN subscription_id text NOT NULL DEFAULT '';
ALTER TABLE watchers ADD COLUMN resource_group text NOT NULL DEFAULT 'NetworkWatcherRG';
ALTER TABLE watchers ADD COLUMN tags text NOT NULL DEFAULT '{}';
-- A watcher from before belongs to the subscription of the hosts it watched.
UPDATE watchers w SET subscription_id = coalesce((SELECT min(h.subscription_id) FROM hosts h WHERE h.location = w.location), '');
ALTER TABLE watchers ALTER COLUMN subscription_id DROP DEFAULT;
ALTER TABLE watchers ALTER COLUMN resource_group DROP DEFAULT;
ALTER TABLE watchers DROP CONSTRAINT watchers_name_key;
ALTER TABLE watchers DROP CONSTRAINT watchers_location_key;
CREATE UNIQUE INDEX watchers_location ON watchers (lower(subscription_id), location) WHERE subscription_id <> '';
CREATE UNIQUE INDEX watchers_resource ON watchers (lower(subscription_id), lower(resource_group), lower(name));

-- +goose Down
DROP INDEX watchers_resource;
DROP INDEX watchers_location;
-- One watcher per location and name survives, the oldest.
DELETE FROM watchers w WHERE EXISTS (SELECT 1 FROM watchers o WHERE (o.location = w.location OR o.name = w.name) AND o.created_at < w.created_at);
ALTER TABLE watchers ADD CONSTRAINT watchers_name_key UNIQUE (name);
ALTER TABLE watchers ADD CONSTRAINT watchers_location_key UNIQUE (location);
ALTER TABLE watchers DROP COLUMN tags;
ALTER TABLE watchers DROP COLUMN resource_group;
ALTER TABLE watchers DROP COLUMN subscription_id;
