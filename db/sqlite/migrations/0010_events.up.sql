-- scirectl schema, version 10: events and idempotency keys (docs/events.md;
-- docs/protocol.md, "Idempotent submits").
--
-- Every state change of a job, a run, a client and every schedule tick is
-- an event, written by the triggers below in the transaction of the change
-- itself, whichever code path makes it (dispatch, reports, sweeps, cancel,
-- halts, enrollment): no change commits without its event, and no event
-- without its change. SQLite has one writer, so ids grow in commit order
-- and a reader that has seen id N has seen every event before it.

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- seq is PostgreSQL's (see its migration), kept here so that a backup
    -- (a SQLite file) holds the same columns; SQLite's readers read id.
    seq         INTEGER,
    type        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    job_id      INTEGER,
    run_id      INTEGER,
    client_id   INTEGER,
    schedule_id INTEGER,
    exit_code   INTEGER,
    detail      TEXT    NOT NULL DEFAULT ''
);
-- A job finishes once: the trigger may see its last runs end together.
CREATE UNIQUE INDEX events_job_finished ON events (job_id) WHERE type = 'job.finished';
CREATE INDEX events_at ON events (at);

-- The runs of a job not yet final: whether a run's end finishes its job.
CREATE INDEX runs_job_active ON runs (job_id) WHERE state IN ('pending', 'sent', 'received', 'running');

CREATE TRIGGER events_job_submitted AFTER INSERT ON jobs
BEGIN
    INSERT INTO events (type, at, job_id) VALUES ('job.submitted', NEW.created_at, NEW.id);
END;

CREATE TRIGGER events_job_halted AFTER UPDATE OF halted_at ON jobs
WHEN OLD.halted_at IS NULL AND NEW.halted_at IS NOT NULL
BEGIN
    INSERT INTO events (type, at, job_id, detail) VALUES ('job.halted', NEW.halted_at, NEW.id, NEW.halt_reason);
END;

-- One trigger for both a run's event and its job's end: SQLite fires the
-- triggers of one change newest first, and the run's event comes first.
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

CREATE TRIGGER events_client_registered AFTER INSERT ON clients
BEGIN
    INSERT INTO events (type, at, client_id) VALUES ('client.registered', NEW.registered_at, NEW.id);
END;

CREATE TRIGGER events_client_status AFTER UPDATE OF status ON clients
WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO events (type, at, client_id)
    VALUES (CASE NEW.status WHEN 'active' THEN 'client.accepted' WHEN 'rejected' THEN 'client.rejected'
                            WHEN 'revoked' THEN 'client.revoked' ELSE 'client.registered' END,
            CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000, NEW.id);
END;

CREATE TRIGGER events_schedule_tick AFTER INSERT ON schedule_ticks
BEGIN
    INSERT INTO events (type, at, job_id, schedule_id, detail)
    VALUES ('schedule.tick', NEW.at, NEW.job_id, NEW.schedule_id, NEW.outcome);
END;

-- Idempotency keys: the first job a user submitted with a key, for 24
-- hours. The primary key makes a key one job, whatever races; a key older
-- than 24 hours is taken over by the next submit that names it.
CREATE TABLE idempotency_keys (
    submitted_by TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (submitted_by, key)
);
CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id);
