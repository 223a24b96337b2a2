-- scirectl schema, version 12: events at a lower cost on the dispatch path
-- (docs/benchmarks.md, "the cost of events on dispatch").
--
-- 1. run.sent and run.received are written by the claim and the
--    acknowledgement themselves, the only two statements that make those
--    states (db/sqlite/dispatch.go, one INSERT for a whole batch), in the
--    same transaction; the trigger writes every other run event. A trigger
--    runs once per row, and those two transitions are most of them.
-- 2. job.finished is its own trigger, fired only when a run's finished_at
--    is first set (every final state sets it, no other does), and the runs
--    a job still waits for are those without finished_at: that index
--    changes when a run is created and when it ends, where one on the
--    state changed with every transition. It is created before the run
--    event's trigger: SQLite fires the newest first, and a run's event
--    comes before its job's end.
-- 3. No index on events.at: the cleaner deletes the oldest events by id
--    (ids grow with time), and every event no longer pays for the index.
--    No lists in the triggers either (IN (...) of three values or more
--    builds a table each time a trigger runs).

DROP INDEX events_at;
DROP TRIGGER events_run_state;
DROP INDEX runs_job_active;

-- Final runs whose finished_at was never set (none is known; a safeguard
-- for the index below): their update time is when they ended.
UPDATE runs SET finished_at = updated_at
 WHERE finished_at IS NULL AND state IN ('succeeded', 'failed', 'denied', 'expired', 'cancelled', 'skipped');

CREATE INDEX runs_job_active ON runs (job_id) WHERE finished_at IS NULL;

CREATE TRIGGER events_job_finished AFTER UPDATE OF finished_at ON runs
WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL
BEGIN
    INSERT INTO events (type, at, job_id)
    SELECT 'job.finished', NEW.updated_at, NEW.job_id
    WHERE NOT EXISTS (SELECT 1 FROM runs WHERE job_id = NEW.job_id AND finished_at IS NULL)
    ON CONFLICT (job_id) WHERE type = 'job.finished' DO NOTHING;
END;

CREATE TRIGGER events_run_state AFTER UPDATE OF state ON runs
WHEN OLD.state <> NEW.state AND NEW.state <> 'sent' AND NEW.state <> 'received'
BEGIN
    INSERT INTO events (type, at, job_id, run_id, client_id, exit_code, detail)
    VALUES (CASE NEW.state WHEN 'pending' THEN 'run.requeued' ELSE 'run.' || NEW.state END,
            NEW.updated_at, NEW.job_id, NEW.id, NEW.client_id,
            CASE NEW.state WHEN 'succeeded' THEN NEW.exit_code WHEN 'failed' THEN NEW.exit_code END,
            CASE NEW.state WHEN 'running' THEN '' ELSE NEW.reason END);
END;
