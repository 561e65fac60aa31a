-- Replicas fence firing in the database: at most one active alert per
-- (rule, host), the alert an instance's breach keeps and its clear
-- resolves (tripcap.Alert.Active: Fired and not Released). A rule without
-- autoMitigate leaves its alert Fired when the condition clears, released,
-- and fires a new one on the next breach, so several Fired alerts of one
-- (rule, host) are normal; of those an older server left, the newest is
-- the active one. The schema matches sqlite/migrations/00015_alerts_active.sql.

-- +goose Up
ALTER TABLE alerts ADD COLUMN active boolean NOT NULL DEFAULT false;
UPDATE alerts SET active = true WHERE monitor_condition = 'Fired' AND NOT EXISTS (
	SELECT 1 FROM alerts n WHERE n.rule_id = alerts.rule_id AND n.host_id = alerts.host_id AND n.monitor_condition = 'Fired'
		AND (n.fired_at > alerts.fired_at OR (n.fired_at = alerts.fired_at AND n.id > alerts.id)));
CREATE UNIQUE INDEX alerts_active ON alerts (rule_id, host_id) WHERE active;

-- +goose Down
DROP INDEX alerts_active;
ALTER TABLE alerts DROP COLUMN active;
