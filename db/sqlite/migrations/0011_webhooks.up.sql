-- scirectl schema, version 11: webhooks (docs/events.md, "Webhooks").
--
-- A webhook is a URL that is sent the events its globs match (events:
-- comma-separated; '' is every event), one POST per event, in the order
-- of the events. Its queue is its own row: cursor_id is the id (the one
-- readers see: SQLite's id, PostgreSQL's seq) of the last event delivered
-- or given up, and the next event to send is the first after it that the
-- globs match. A webhook starts at the newest event there is when it is
-- added.
--
-- One delivery in flight per webhook, whatever the number of daemons: a
-- daemon takes the row's lease (lease_owner, lease_until) by a
-- conditional update, and each change it makes afterwards is conditional
-- on still holding it. A dead daemon's lease runs out and another daemon
-- takes the webhook over, sending again the event the dead one may have
-- been sending: at least once, receivers drop repeats by the event id.
--
-- attempts, first_failure_at and next_attempt_at are the retries of the
-- event after the cursor: each failure makes it wait longer (exponential
-- backoff), and once its first failure is 24 hours old the attempt that
-- fails is its last: it is recorded as failed and the cursor moves past.
--
-- webhook_deliveries is the history of the attempts (the last thousand
-- or so per webhook), which `webhook deliveries` shows.

CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    url              TEXT    NOT NULL,
    events           TEXT    NOT NULL DEFAULT '',
    secret           BLOB,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    cursor_id        INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    first_failure_at INTEGER,
    lease_owner      TEXT,
    lease_until      INTEGER
);

CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id    INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    duration    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    server_id   INTEGER
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
