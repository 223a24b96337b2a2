DROP INDEX jobs_created;
