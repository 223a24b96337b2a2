CREATE INDEX events_at ON events (at);
