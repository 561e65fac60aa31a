-- A heartbeat rewrites a host's last_seen, a thousand hosts a second at
-- 10,000 agents; indexed, every one of those writes also moved an index
-- entry. The only reader of the index, the offline sweep every few
-- seconds, scans the table instead. The schema matches
-- postgres/migrations/00016_hosts_heartbeat_hot.sql (which also leaves
-- free room in the table's pages for PostgreSQL's HOT updates).

-- +goose Up
DROP INDEX hosts_online_last_seen;

-- +goose Down
CREATE INDEX hosts_online_last_seen ON hosts (last_seen) WHERE state = 'Online';
