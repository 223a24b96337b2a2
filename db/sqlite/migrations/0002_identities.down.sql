-- Back to version 1's acl_rules, without target_id (a column under a
-- foreign key cannot be dropped in place). Client rules keep the name they
-- display as their target, which version 1 matches by name. The other
-- tables keep AUTOINCREMENT: version 1 works with it unchanged.

ALTER TABLE acl_rules RENAME TO old_acl_rules;
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
    created_at   INTEGER NOT NULL
);
INSERT INTO acl_rules (id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at)
SELECT id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at FROM old_acl_rules;
DROP TABLE old_acl_rules;
