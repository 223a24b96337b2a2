-- Back to version 2: skipped runs become cancelled (version 2's nearest
-- final state, with their reason kept), the rollout columns go.
DROP INDEX runs_rollout;
DROP INDEX runs_rollout_active;
UPDATE runs SET state = 'cancelled' WHERE state = 'skipped';

CREATE TABLE runs_old (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    client_id        INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'received', 'running', 'succeeded',
                                      'failed', 'denied', 'expired', 'cancelled')),
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
    UNIQUE (job_id, client_id)
);
INSERT INTO runs_old (id, job_id, client_id, state, priority, not_before, attempts, exit_code, reason, server_id,
                      created_at, sent_at, lease_until, acked_at, started_at, finished_at, updated_at, output, output_truncated)
SELECT id, job_id, client_id, state, priority, not_before, attempts, exit_code, reason, server_id,
       created_at, sent_at, lease_until, acked_at, started_at, finished_at, updated_at, output, output_truncated
FROM runs;
INSERT INTO sqlite_sequence (name, seq)
SELECT 'runs_old', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runs_old');
UPDATE sqlite_sequence SET seq = max(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0))
WHERE name = 'runs_old';
DROP TABLE runs;
ALTER TABLE runs_old RENAME TO runs;
CREATE INDEX runs_dispatch ON runs (client_id, priority DESC, id) WHERE state = 'pending';
CREATE INDEX runs_inflight ON runs (state, lease_until) WHERE state IN ('sent', 'received', 'running');
CREATE INDEX runs_job ON runs (job_id);
CREATE INDEX runs_pending_job ON runs (job_id) WHERE state = 'pending';
CREATE INDEX runs_cancelled ON runs (client_id, finished_at) WHERE state = 'cancelled';

ALTER TABLE jobs DROP COLUMN max_parallel;
ALTER TABLE jobs DROP COLUMN max_failures;
ALTER TABLE jobs DROP COLUMN canary;
ALTER TABLE jobs DROP COLUMN success_threshold;
ALTER TABLE jobs DROP COLUMN paused;
ALTER TABLE jobs DROP COLUMN halted_at;
ALTER TABLE jobs DROP COLUMN halt_reason;
ALTER TABLE jobs DROP COLUMN rerun_of;
