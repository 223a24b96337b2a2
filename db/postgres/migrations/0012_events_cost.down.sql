ALTER TABLE runs DROP COLUMN own_events;
ALTER TABLE events DROP COLUMN batch;
ALTER TABLE events DROP COLUMN span;
CREATE INDEX events_at ON events (at);
