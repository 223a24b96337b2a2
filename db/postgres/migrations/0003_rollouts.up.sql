-- scirectl schema, version 3: rollouts (docs/protocol.md, "Rollouts").
--
-- A job keeps its rollout: the max-parallel window and the failure budget
-- resolved against its number of runs at submit (0: no window, -1: no
-- budget), its canaries, the share of runs that must succeed, whether an
-- operator paused it, when and why it halted, and the job it reruns.
-- A run says whether its job is gated (dispatch counts the job's runs
-- before sending one; the claim locks the job's row first, so two daemons
-- never both take the last free slot) and whether it is a canary. The
-- partial indexes hold gated runs only: a job without a rollout costs them
-- nothing. Runs gain the final state skipped.

ALTER TABLE jobs
    ADD COLUMN max_parallel      BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN max_failures      BIGINT  NOT NULL DEFAULT -1,
    ADD COLUMN canary            BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN success_threshold BIGINT  NOT NULL DEFAULT 100,
    ADD COLUMN paused            BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN halted_at         BIGINT,
    ADD COLUMN halt_reason       TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN rerun_of          BIGINT;

ALTER TABLE runs
    ADD COLUMN gated  BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN canary BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('pending', 'sent', 'received', 'running', 'succeeded',
                     'failed', 'denied', 'expired', 'cancelled', 'skipped'));

CREATE INDEX runs_rollout ON runs (job_id, canary, state) WHERE gated;
CREATE INDEX runs_rollout_active ON runs (job_id) WHERE gated AND state IN ('pending', 'sent', 'received', 'running');
