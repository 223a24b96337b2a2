-- scirectl schema, version 12: events at a lower cost on the dispatch path
-- (docs/benchmarks.md, "the cost of events on dispatch").
--
-- 1. A batch's events in one row. The dispatch statements that move a
--    whole batch of runs (the claim, the acknowledgement, the set-based
--    reports: db/sqlite/events.go) write their runs' events themselves,
--    in their transaction, as one row for the batch: span events, the
--    last with the row's id, the others with the ids just below it (the
--    statement takes them: ids stay dense, increasing in commit order);
--    batch holds each one's run, job, exit code and detail as JSON, and
--    readers expand the row. One row instead of one per run is most of
--    what events cost there. The set-based reports set columns that
--    triggers watch (started_at, finished_at), so they also add one to
--    their runs' own_events, and the triggers skip a change that did so;
--    the claim and the ack set none.
-- 2. No trigger on the state column, which the claim and the ack set for
--    every run they move: a trigger runs for every row of a statement that
--    sets one of its columns, whatever its WHEN says. run.sent and
--    run.received are those two statements' own; a run's end is the first
--    setting of its finished_at (every final state sets it, nothing else
--    does); run.running sets started_at (as the ends do: the WHEN tells);
--    run.requeued is written by the one statement that requeues a run
--    (db/sqlite/sweep.go). job.finished is a trigger on finished_at too,
--    and the runs a job still waits for are those without finished_at:
--    that index changes when a run is created and when it ends, where one
--    on the state changed with every transition. It is created before the
--    run's end: SQLite fires the newest trigger first, and a run's event
--    comes before its job's end.
-- 3. No lists in the triggers (IN (...) of three values or more builds a
--    table each time a trigger runs).

ALTER TABLE events ADD COLUMN span INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN batch TEXT;
ALTER TABLE runs ADD COLUMN own_events INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER events_run_state;
DROP INDEX runs_job_active;

-- Final runs whose finished_at was never set (none is known; a safeguard
-- for the index below): their update time is when they ended.
UPDATE runs SET finished_at = updated_at
 WHERE finished_at IS NULL AND state IN ('succeeded', 'failed', 'denied', 'expired', 'cancelled', 'skipped');

CREATE INDEX runs_job_active ON runs (job_id) WHERE finished_at IS NULL;

CREATE TRIGGER events_job_finished AFTER UPDATE OF finished_at ON runs
WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NEW.own_events = OLD.own_events
BEGIN
    INSERT INTO events (type, at, job_id)
    SELECT 'job.finished', NEW.updated_at, NEW.job_id
    WHERE NOT EXISTS (SELECT 1 FROM runs WHERE job_id = NEW.job_id AND finished_at IS NULL)
    ON CONFLICT (job_id) WHERE type = 'job.finished' DO NOTHING;
END;

CREATE TRIGGER events_run_final AFTER UPDATE OF finished_at ON runs
WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NEW.own_events = OLD.own_events
BEGIN
    INSERT INTO events (type, at, job_id, run_id, client_id, exit_code, detail)
    VALUES ('run.' || NEW.state, NEW.updated_at, NEW.job_id, NEW.id, NEW.client_id,
            CASE NEW.state WHEN 'succeeded' THEN NEW.exit_code WHEN 'failed' THEN NEW.exit_code END, NEW.reason);
END;

CREATE TRIGGER events_run_running AFTER UPDATE OF started_at ON runs
WHEN OLD.state <> 'running' AND NEW.state = 'running' AND NEW.own_events = OLD.own_events
BEGIN
    INSERT INTO events (type, at, job_id, run_id, client_id, detail)
    VALUES ('run.running', NEW.updated_at, NEW.job_id, NEW.id, NEW.client_id, '');
END;
