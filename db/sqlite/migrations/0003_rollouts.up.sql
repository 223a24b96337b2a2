-- scirectl schema, version 3: rollouts (docs/protocol.md, "Rollouts").
--
-- A job keeps its rollout: the max-parallel window and the failure budget
-- resolved against its number of runs at submit (0: no window, -1: no
-- budget), its canaries, the share of runs that must succeed, whether an
-- operator paused it, when and why it halted, and the job it reruns.
--
-- A run says whether its job is gated (has a window, a budget or
-- canaries: dispatch counts the job's runs before sending one) and whether
-- it is a canary. The partial indexes hold gated runs only, so a job
-- without a rollout costs them nothing. Runs gain the final state skipped:
-- SQLite cannot change a CHECK constraint in place, so the runs table is
-- rebuilt, keeping its ids and its AUTOINCREMENT sequence.

ALTER TABLE jobs ADD COLUMN max_parallel INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_failures INTEGER NOT NULL DEFAULT -1;
ALTER TABLE jobs ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN success_threshold INTEGER NOT NULL DEFAULT 100;
ALTER TABLE jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN halted_at INTEGER;
ALTER TABLE jobs ADD COLUMN halt_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN rerun_of INTEGER;

CREATE TABLE runs_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    client_id        INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'received', 'running', 'succeeded',
                                      'failed', 'denied', 'expired', 'cancelled', 'skipped')),
    -- Copied from the job so dispatch reads one index: highest priority, then oldest.
    priority         INTEGER NOT NULL,
    not_before       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    exit_code        INTEGER,
    reason           TEXT    NOT NULL DEFAULT '',
    server_id        INTEGER,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    lease_until      INTEGER,
    acked_at         INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    output           TEXT    NOT NULL DEFAULT '',
    output_truncated INTEGER NOT NULL DEFAULT 0,
    gated            INTEGER NOT NULL DEFAULT 0,
    canary           INTEGER NOT NULL DEFAULT 0,
    UNIQUE (job_id, client_id)
);
INSERT INTO runs_new (id, job_id, client_id, state, priority, not_before, attempts, exit_code, reason, server_id,
                      created_at, sent_at, lease_until, acked_at, started_at, finished_at, updated_at, output, output_truncated)
SELECT id, job_id, client_id, state, priority, not_before, attempts, exit_code, reason, server_id,
       created_at, sent_at, lease_until, acked_at, started_at, finished_at, updated_at, output, output_truncated
FROM runs;
-- The new table's sequence starts past every id the old one handed out,
-- deleted runs' included.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'runs_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runs_new');
UPDATE sqlite_sequence SET seq = max(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0))
WHERE name = 'runs_new';
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- Dispatch: a client's pending runs in priority order, O(log n) whatever the backlog.
CREATE INDEX runs_dispatch ON runs (client_id, priority DESC, id) WHERE state = 'pending';
-- Lease and loss sweeps, failover requeue. SQLite uses a partial index only for a
-- query that repeats its WHERE term as written (see inFlight in maintain.go).
CREATE INDEX runs_inflight ON runs (state, lease_until) WHERE state IN ('sent', 'received', 'running');
CREATE INDEX runs_job ON runs (job_id);
CREATE INDEX runs_pending_job ON runs (job_id) WHERE state = 'pending';
-- Agents asking which of their runs were cancelled since a time.
CREATE INDEX runs_cancelled ON runs (client_id, finished_at) WHERE state = 'cancelled';
-- Rollouts: a gated job's runs by canary and state (the counts dispatch
-- checks), and the gated jobs whose runs are not all final yet.
CREATE INDEX runs_rollout ON runs (job_id, canary, state) WHERE gated;
CREATE INDEX runs_rollout_active ON runs (job_id) WHERE gated AND state IN ('pending', 'sent', 'received', 'running');
