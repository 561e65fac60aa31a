-- Durable responder work: a run's normalized alert (so a run accepted but
-- not decided before a restart is decided after it), whether it has work
-- left (a decision or a completion notification), and which server holds
-- it until when, so that of several replicas exactly one resumes it.
-- Responders get a version for conditional updates (If-Match). The schema
-- matches sqlite/migrations/00005_responder_claims.sql.

-- +goose Up
ALTER TABLE responders ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE responder_runs ADD COLUMN trigger_doc json;                        -- responder.Trigger
ALTER TABLE responder_runs ADD COLUMN open boolean NOT NULL DEFAULT false; -- tripcap.ResponderRun.Open
ALTER TABLE responder_runs ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT ''; -- '' when no one holds it
ALTER TABLE responder_runs ADD COLUMN lease_until timestamptz;
-- Runs left pending by an older server are open: the next start records
-- them as failed (their alert was not kept).
UPDATE responder_runs SET open = true WHERE doc->>'decision' = 'pending';
CREATE INDEX responder_runs_open ON responder_runs (received_at, id) WHERE open;

-- +goose Down
DROP INDEX responder_runs_open;
ALTER TABLE responder_runs DROP COLUMN lease_until;
ALTER TABLE responder_runs DROP COLUMN owner;
ALTER TABLE responder_runs DROP COLUMN open;
ALTER TABLE responder_runs DROP COLUMN trigger_doc;
ALTER TABLE responders DROP COLUMN version;
