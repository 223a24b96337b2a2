DROP TRIGGER events_run_running;
DROP TRIGGER events_run_final;
DROP TRIGGER events_job_finished;
DROP INDEX runs_job_active;
CREATE INDEX runs_job_active ON runs (job_id) WHERE state IN ('pending', 'sent', 'received', 'running');

CREATE TRIGGER events_run_state AFTER UPDATE OF state ON runs
WHEN OLD.state <> NEW.state
BEGIN
    INSERT INTO events (type, at, job_id, run_id, client_id, exit_code, detail)
    VALUES (CASE NEW.state WHEN 'pending' THEN 'run.requeued' ELSE 'run.' || NEW.state END,
            NEW.updated_at, NEW.job_id, NEW.id, NEW.client_id,
            CASE WHEN NEW.state IN ('succeeded', 'failed') THEN NEW.exit_code END,
            CASE WHEN NEW.state IN ('sent', 'received', 'running') THEN '' ELSE NEW.reason END);
    INSERT INTO events (type, at, job_id)
    SELECT 'job.finished', NEW.updated_at, NEW.job_id
    WHERE NEW.state IN ('succeeded', 'failed', 'denied', 'expired', 'cancelled', 'skipped')
      AND OLD.state NOT IN ('succeeded', 'failed', 'denied', 'expired', 'cancelled', 'skipped')
      AND NOT EXISTS (SELECT 1 FROM runs WHERE job_id = NEW.job_id AND state IN ('pending', 'sent', 'received', 'running'))
    ON CONFLICT (job_id) WHERE type = 'job.finished' DO NOTHING;
END;
ALTER TABLE runs DROP COLUMN own_events;
ALTER TABLE events DROP COLUMN batch;
ALTER TABLE events DROP COLUMN span;
