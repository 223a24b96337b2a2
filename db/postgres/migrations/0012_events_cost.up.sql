-- scirectl schema, version 12 (docs/benchmarks.md, "the cost of events on
-- dispatch").
--
-- An events row may hold several events (SQLite's dispatch statements
-- write a batch's in one row: span events, the last with the row's id,
-- batch their runs, jobs, exit codes and details as JSON). PostgreSQL
-- writes one event a row, by its triggers, but holds the columns, so that
-- a backup moves between the two: numbering gives a row span seq values.
-- own_events is SQLite's (its set-based reports, which write their runs'
-- events themselves, add one to it so that its triggers skip them); here
-- it stays 0.

ALTER TABLE events ADD COLUMN span BIGINT NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN batch TEXT;
ALTER TABLE runs ADD COLUMN own_events BIGINT NOT NULL DEFAULT 0;
