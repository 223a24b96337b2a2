-- migrate: no transaction
--
-- Back to version 8: no index for the cleaner, no auto_vacuum (a VACUUM
-- again, outside a transaction, as the up migration).

BEGIN;
DROP INDEX IF EXISTS jobs_created;
COMMIT;

PRAGMA auto_vacuum = NONE;
VACUUM;
