-- scirectl schema, version 2, for PostgreSQL: the counterpart of
-- db/sqlite/migrations/0002_identities.up.sql. Identity columns never hand
-- out an id twice already (and Reset no longer restarts them), so only the
-- ACL rules change: a rule whose target is a client names it by id
-- (target_id), resolved when the rule is written, and no longer matches
-- whatever client later carries the same name or id. Existing client rules
-- are resolved as version 1 matched them (id first, then the accepted
-- client of that name, then the newest client of that name); a rule that
-- resolves to no client is switched off and says so in its note.

-- The client a client-kind rule names (NULL for other kinds); target keeps
-- its name as written, for display.
ALTER TABLE acl_rules ADD COLUMN target_id BIGINT REFERENCES clients (id) DEFERRABLE;

UPDATE acl_rules r SET target_id = COALESCE(
        (SELECT c.id FROM clients c WHERE CAST(c.id AS TEXT) = r.target),
        (SELECT c.id FROM clients c WHERE c.name = r.target AND c.status = 'active'),
        (SELECT max(c.id) FROM clients c WHERE c.name = r.target))
WHERE target_kind = 'client';
UPDATE acl_rules r SET target = c.name FROM clients c WHERE c.id = r.target_id;
UPDATE acl_rules SET active = FALSE,
       note = note || CASE WHEN note = '' THEN '' ELSE ' ' END ||
              '[switched off by schema version 2: no registered client is "' || target || '"]'
WHERE target_kind = 'client' AND target_id IS NULL;
