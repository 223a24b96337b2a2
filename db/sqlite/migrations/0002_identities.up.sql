-- scirectl schema, version 2: identities are never reused.
--
-- Every table whose rows are named by id anywhere (clients, users, tokens,
-- groups, ACL rules, jobs, runs, servers, audit records) gets AUTOINCREMENT:
-- without it SQLite hands out max(id)+1, so deleting the newest client gave
-- its id, and every ACL rule or audit record naming that id, to the next
-- machine that registered. With it, sqlite_sequence remembers the highest id
-- ever used, across deletes, Reset and Restore.
--
-- SQLite cannot add AUTOINCREMENT to a table, so every table is rebuilt:
-- the old ones are renamed away (which repoints their foreign keys at the
-- renamed parents), new ones are created under the old names, the rows are
-- copied with their ids, the old tables are dropped children first (so no
-- ON DELETE CASCADE fires into the new ones) and the indexes are created
-- again. golang-migrate runs the file in one transaction with foreign keys
-- on; any error leaves the version-1 database as it was.
--
-- ACL rules also gain target_id: a rule whose target is a client names it
-- by id, resolved when the rule is written, and no longer matches whatever
-- client later carries the same name or id. Existing client rules are
-- resolved here as version 1 matched them (id first, then the accepted
-- client of that name, then the newest client of that name); a rule that
-- resolves to no client is switched off and says so in its note.

ALTER TABLE servers RENAME TO old_servers;
ALTER TABLE clients RENAME TO old_clients;
ALTER TABLE client_groups RENAME TO old_client_groups;
ALTER TABLE client_group_members RENAME TO old_client_group_members;
ALTER TABLE client_group_children RENAME TO old_client_group_children;
ALTER TABLE users RENAME TO old_users;
ALTER TABLE user_tokens RENAME TO old_user_tokens;
ALTER TABLE user_groups RENAME TO old_user_groups;
ALTER TABLE user_group_members RENAME TO old_user_group_members;
ALTER TABLE user_group_children RENAME TO old_user_group_children;
ALTER TABLE acl_rules RENAME TO old_acl_rules;
ALTER TABLE jobs RENAME TO old_jobs;
ALTER TABLE runs RENAME TO old_runs;
ALTER TABLE operations RENAME TO old_operations;

CREATE TABLE servers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    address      TEXT    NOT NULL,
    hostname     TEXT    NOT NULL DEFAULT '',
    version      TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE clients (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TABLE client_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
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
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE user_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL DEFAULT '',
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE user_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
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
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT    NOT NULL CHECK (subject_kind IN ('user', 'user-group', '*')),
    subject      TEXT    NOT NULL DEFAULT '',
    permission   TEXT    NOT NULL,
    target_kind  TEXT    NOT NULL CHECK (target_kind IN ('client', 'client-group', '*')),
    target       TEXT    NOT NULL DEFAULT '',
    allow        INTEGER NOT NULL CHECK (allow IN (0, 1)),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    note         TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    -- The client a client-kind rule names (NULL for other kinds); target
    -- keeps its name as written, for display.
    target_id    INTEGER REFERENCES clients (id)
);
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
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
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TABLE operations (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    server_id INTEGER,
    actor     TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    target    TEXT    NOT NULL DEFAULT '',
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT ''
);

INSERT INTO servers SELECT * FROM old_servers;
INSERT INTO clients SELECT * FROM old_clients;
INSERT INTO client_groups SELECT * FROM old_client_groups;
INSERT INTO client_group_members SELECT * FROM old_client_group_members;
INSERT INTO client_group_children SELECT * FROM old_client_group_children;
INSERT INTO users SELECT * FROM old_users;
INSERT INTO user_tokens SELECT * FROM old_user_tokens;
INSERT INTO user_groups SELECT * FROM old_user_groups;
INSERT INTO user_group_members SELECT * FROM old_user_group_members;
INSERT INTO user_group_children SELECT * FROM old_user_group_children;
INSERT INTO jobs SELECT * FROM old_jobs;
INSERT INTO runs SELECT * FROM old_runs;
INSERT INTO operations SELECT * FROM old_operations;
INSERT INTO acl_rules (id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at, target_id)
SELECT id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at,
       CASE WHEN target_kind = 'client' THEN COALESCE(
           (SELECT c.id FROM clients c WHERE CAST(c.id AS TEXT) = r.target),
           (SELECT c.id FROM clients c WHERE c.name = r.target AND c.status = 'active'),
           (SELECT max(c.id) FROM clients c WHERE c.name = r.target)) END
FROM old_acl_rules r;
UPDATE acl_rules SET target = (SELECT c.name FROM clients c WHERE c.id = acl_rules.target_id)
WHERE target_id IS NOT NULL;
UPDATE acl_rules SET active = 0,
       note = note || CASE WHEN note = '' THEN '' ELSE ' ' END ||
              '[switched off by schema version 2: no registered client is "' || target || '"]'
WHERE target_kind = 'client' AND target_id IS NULL;

-- Children first: dropping a parent with foreign keys on deletes its rows,
-- and its children's rows with them.
DROP TABLE old_runs;
DROP TABLE old_operations;
DROP TABLE old_acl_rules;
DROP TABLE old_user_group_children;
DROP TABLE old_user_group_members;
DROP TABLE old_user_tokens;
DROP TABLE old_client_group_children;
DROP TABLE old_client_group_members;
DROP TABLE old_jobs;
DROP TABLE old_user_groups;
DROP TABLE old_users;
DROP TABLE old_client_groups;
DROP TABLE old_clients;
DROP TABLE old_servers;

-- Names are labels, unique among accepted clients only (SPEC §7).
CREATE UNIQUE INDEX clients_active_name ON clients (name) WHERE status = 'active';
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
CREATE INDEX operations_at ON operations (at);
