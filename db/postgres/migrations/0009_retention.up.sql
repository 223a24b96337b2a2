-- scirectl schema, version 9: retention (docs/maintenance.md, "Retention").
--
-- The cleaner deletes final jobs whose last run ended before the retention
-- period, oldest first, and audit records older than theirs. jobs_created
-- lets it walk the jobs by creation time (a job ends after it was created,
-- so the jobs created before the cutoff are the only candidates) in
-- batches, from where the last batch stopped (created_at, id);
-- operations_at (version 1) does the same for the audit trail. The space
-- of deleted rows is PostgreSQL's autovacuum's to reuse: nothing to do
-- here.

CREATE INDEX jobs_created ON jobs (created_at, id);
