-- Metric alert rules, action groups, alerts and their delivery logs. The
-- schema matches postgres/migrations/00002_alerting.sql: the few columns
-- listings filter and sort on, plus the whole object as a JSON document
-- (TEXT here), so a field added to the domain types is kept without a
-- migration. Times are UTC text with nine fractional digits.

-- +goose Up
CREATE TABLE alert_rules (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	doc        TEXT NOT NULL  -- JSON tripcap.AlertRule
) STRICT;
-- Names are unique regardless of case, as ARM's are.
CREATE UNIQUE INDEX alert_rules_name ON alert_rules (lower(name));

CREATE TABLE action_groups (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	doc        TEXT NOT NULL  -- JSON tripcap.ActionGroup, signing secret included
) STRICT;
CREATE UNIQUE INDEX action_groups_name ON action_groups (lower(name));

-- rule_id and host_id have no foreign keys: alerts outlive their rule and host.
CREATE TABLE alerts (
	id                TEXT PRIMARY KEY,
	rule_id           TEXT NOT NULL,
	host_id           TEXT NOT NULL,
	monitor_condition TEXT NOT NULL,
	fired_at          TEXT NOT NULL,
	doc               TEXT NOT NULL  -- JSON tripcap.Alert
) STRICT;
CREATE INDEX alerts_fired_at ON alerts (fired_at, id);
CREATE INDEX alerts_rule ON alerts (rule_id);
CREATE INDEX alerts_host ON alerts (host_id);
-- A starting server restores the alerts still Fired.
CREATE INDEX alerts_fired ON alerts (fired_at) WHERE monitor_condition = 'Fired';

-- seq orders an alert's attempts as they were recorded.
CREATE TABLE alert_deliveries (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	time     TEXT NOT NULL,
	doc      TEXT NOT NULL  -- JSON tripcap.Delivery
) STRICT;
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, seq);

-- +goose Down
DROP TABLE alert_deliveries;
DROP TABLE alerts;
DROP TABLE action_groups;
DROP TABLE alert_rules;
