-- Metric alert rules, action groups, alerts and their delivery logs. The
-- schema matches sqlite/migrations/00002_alerting.sql: the few columns
-- listings filter and sort on, plus the whole object as a json document, so
-- a field added to the domain types is kept without a migration.

-- +goose Up
CREATE TABLE alert_rules (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	doc        json NOT NULL
);
-- Names are unique regardless of case, as ARM's are.
CREATE UNIQUE INDEX alert_rules_name ON alert_rules (lower(name));

CREATE TABLE action_groups (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	doc        json NOT NULL  -- signing secret included
);
CREATE UNIQUE INDEX action_groups_name ON action_groups (lower(name));

-- rule_id and host_id have no foreign keys: alerts outlive their rule and host.
CREATE TABLE alerts (
	id                text COLLATE "C" PRIMARY KEY,
	rule_id           text NOT NULL,
	host_id           text NOT NULL,
	monitor_condition text NOT NULL,
	fired_at          timestamptz NOT NULL,
	doc               json NOT NULL
);
CREATE INDEX alerts_fired_at ON alerts (fired_at, id);
CREATE INDEX alerts_rule ON alerts (rule_id);
CREATE INDEX alerts_host ON alerts (host_id);
-- A starting server restores the alerts still Fired.
CREATE INDEX alerts_fired ON alerts (fired_at) WHERE monitor_condition = 'Fired';

-- seq orders an alert's attempts as they were recorded.
CREATE TABLE alert_deliveries (
	seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	alert_id text COLLATE "C" NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	time     timestamptz NOT NULL,
	doc      json NOT NULL
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, seq);

-- +goose Down
DROP TABLE alert_deliveries;
DROP TABLE alerts;
DROP TABLE action_groups;
DROP TABLE alert_rules;
