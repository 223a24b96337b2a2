-- scirectl schema, version 1. Times are Unix nanoseconds (UTC); NULL = unset.

CREATE TABLE servers (
    id           INTEGER PRIMARY KEY,
    address      TEXT    NOT NULL,
    hostname     TEXT    NOT NULL DEFAULT '',
    version      TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE clients (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'active', 'rejected', 'revoked')),
    hostname      TEXT    NOT NULL DEFAULT '',
    os            TEXT    NOT NULL DEFAULT '',
    arch          TEXT    NOT NULL DEFAULT '',
    version       TEXT    NOT NULL DEFAULT '',
    mode          TEXT    NOT NULL DEFAULT 'poll' CHECK (mode IN ('poll', 'daemon')),
    callback_url  TEXT    NOT NULL DEFAULT '',
    registered_at INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
);
-- Names are labels, unique among accepted clients only (SPEC §7).
CREATE UNIQUE INDEX clients_active_name ON clients (name) WHERE status = 'active';

CREATE TABLE client_groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    note       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE TABLE client_group_members (
    group_id  INTEGER NOT NULL REFERENCES client_groups (id) ON DELETE CASCADE,
    client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, client_id)
);
CREATE TABLE client_group_children (
    parent_id INTEGER NOT NULL REFERENCES client_groups (id) ON DELETE CASCADE,
    child_id  INTEGER NOT NULL REFERENCES client_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE user_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL DEFAULT '',
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE user_groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    note       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE TABLE user_group_members (
    group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE user_group_children (
    parent_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    child_id  INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);

CREATE TABLE acl_rules (
    id           INTEGER PRIMARY KEY,
    subject_kind TEXT    NOT NULL CHECK (subject_kind IN ('user', 'user-group', '*')),
    subject      TEXT    NOT NULL DEFAULT '',
    permission   TEXT    NOT NULL,
    target_kind  TEXT    NOT NULL CHECK (target_kind IN ('client', 'client-group', '*')),
    target       TEXT    NOT NULL DEFAULT '',
    allow        INTEGER NOT NULL CHECK (allow IN (0, 1)),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    note         TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    permission   TEXT    NOT NULL DEFAULT 'run',
    interpreter  TEXT    NOT NULL,
    script       TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    submitted_by TEXT    NOT NULL,
    targets      TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    not_before   INTEGER,
    expires_at   INTEGER,
    timeout_s    INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    client_id        INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'received', 'running', 'succeeded',
                                      'failed', 'denied', 'expired', 'cancelled')),
    -- Copied from the job so dispatch reads one index: highest priority, then oldest.
    priority         INTEGER NOT NULL,
    not_before       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    exit_code        INTEGER,
    reason           TEXT    NOT NULL DEFAULT '',
    server_id        INTEGER,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    lease_until      INTEGER,
    acked_at         INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    output           TEXT    NOT NULL DEFAULT '',
    output_truncated INTEGER NOT NULL DEFAULT 0,
    UNIQUE (job_id, client_id)
);
-- Dispatch: a client's pending runs in priority order, O(log n) whatever the backlog.
CREATE INDEX runs_dispatch ON runs (client_id, priority DESC, id) WHERE state = 'pending';
-- Lease and loss sweeps, failover requeue. SQLite uses a partial index only for a
-- query that repeats its WHERE term as written (see inFlight in maintain.go).
CREATE INDEX runs_inflight ON runs (state, lease_until) WHERE state IN ('sent', 'received', 'running');
CREATE INDEX runs_job ON runs (job_id);
-- Expiry sweep: jobs with an expiry, oldest first, then each one's pending runs,
-- so a sweep reads expired jobs and due runs, not the whole runs table.
CREATE INDEX jobs_expires ON jobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX runs_pending_job ON runs (job_id) WHERE state = 'pending';
-- Agents asking which of their runs were cancelled since a time.
CREATE INDEX runs_cancelled ON runs (client_id, finished_at) WHERE state = 'cancelled';

CREATE TABLE operations (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    server_id INTEGER,
    actor     TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    target    TEXT    NOT NULL DEFAULT '',
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX operations_at ON operations (at);
