-- Back to version 2: skipped runs become cancelled (version 2's nearest
-- final state, with their reason kept), the rollout columns go.
DROP INDEX runs_rollout;
DROP INDEX runs_rollout_active;
UPDATE runs SET state = 'cancelled' WHERE state = 'skipped';
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('pending', 'sent', 'received', 'running', 'succeeded',
                     'failed', 'denied', 'expired', 'cancelled'));
ALTER TABLE runs DROP COLUMN gated, DROP COLUMN canary;
ALTER TABLE jobs
    DROP COLUMN max_parallel, DROP COLUMN max_failures, DROP COLUMN canary, DROP COLUMN success_threshold,
    DROP COLUMN paused, DROP COLUMN halted_at, DROP COLUMN halt_reason, DROP COLUMN rerun_of;
