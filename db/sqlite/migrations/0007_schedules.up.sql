-- scirectl schema, version 7: schedules (docs/protocol.md, "Schedules").
--
-- A schedule is a cron expression, a time zone and the job each of its
-- ticks submits as its owner (job: the template, JSON). since is when it
-- was added or last resumed: ticks at or before it are not due.
--
-- schedule_ticks is its history and the guarantee of one job per tick: a
-- tick (Unix seconds, UTC) is recorded once per schedule, by the unique
-- key, in the transaction that stores its job, so that of several daemons
-- handling the same tick one commits and the others find it taken. The
-- ticks without a job (skipped, denied, failed) are recorded the same
-- way. A job started by schedule.run has no tick (NULL: no key).

CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    owner      TEXT    NOT NULL,
    cron       TEXT    NOT NULL,
    timezone   TEXT    NOT NULL,
    catch_up   TEXT    NOT NULL CHECK (catch_up IN ('latest', 'none')),
    overlap    TEXT    NOT NULL CHECK (overlap IN ('skip', 'allow')),
    job        TEXT    NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    since      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE schedule_ticks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick        INTEGER,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('fired', 'run', 'skipped', 'denied', 'failed')),
    job_id      INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    by_user     TEXT    NOT NULL DEFAULT '',
    UNIQUE (schedule_id, tick)
);

CREATE INDEX schedule_ticks_jobs ON schedule_ticks (schedule_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX schedule_ticks_job_id ON schedule_ticks (job_id) WHERE job_id IS NOT NULL;
