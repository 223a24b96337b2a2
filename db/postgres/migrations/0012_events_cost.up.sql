-- scirectl schema, version 12: the cleaner deletes the oldest events by id
-- (ids grow with time); an index on events.at cost every event its upkeep
-- (docs/benchmarks.md, "the cost of events on dispatch").

DROP INDEX events_at;
