-- migrate: no transaction
--
-- scirectl schema, version 9: retention (docs/maintenance.md, "Retention").
--
-- The cleaner deletes final jobs whose last run ended before the retention
-- period, oldest first, and audit records older than theirs. jobs_created
-- lets it walk the jobs by creation time (a job ends after it was created,
-- so the jobs created before the cutoff are the only candidates) in
-- batches, from where the last batch stopped; operations_at (version 1)
-- does the same for the audit trail.
--
-- A database gives the space of deleted rows back to the file system only
-- with auto_vacuum: INCREMENTAL lets the cleaner do it in small steps
-- (PRAGMA incremental_vacuum) after a clean. The mode of a database that
-- has tables changes only with a VACUUM, which rewrites the whole file
-- (once; it needs free disk space about the size of the database) and
-- cannot run in a transaction. This file is therefore run as it is, not
-- wrapped in one (the first line says so to the migration driver,
-- sqlite.go): its index in a transaction of its own, then the mode and the
-- VACUUM. A failure of either leaves the version dirty; the index is
-- created only if missing, so the file can be run again.

BEGIN;
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
COMMIT;

PRAGMA auto_vacuum = INCREMENTAL;
VACUUM;
