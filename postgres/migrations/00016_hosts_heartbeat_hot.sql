-- A heartbeat rewrites a host's last_seen, a thousand hosts a second at
-- 10,000 agents. Indexed, the column made every such UPDATE a new tuple in
-- each of the table's indexes (not a HOT update): the heartbeat batches
-- held their hosts' rows for tens of milliseconds, and a capture's revision
-- bump on one of those hosts waited for them (issue 10). The only reader of
-- the index, the offline sweep every few seconds, scans the table instead;
-- free room in each page (fillfactor) keeps the new versions on their page.
-- The schema matches sqlite/migrations/00016_hosts_heartbeat_hot.sql (which
-- has no fillfactor).

-- +goose Up
DROP INDEX hosts_online_last_seen;
ALTER TABLE hosts SET (fillfactor = 80);

-- +goose Down
ALTER TABLE hosts RESET (fillfactor);
CREATE INDEX hosts_online_last_seen ON hosts (last_seen) WHERE state = 'Online';
