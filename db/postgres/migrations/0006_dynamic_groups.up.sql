-- scirectl schema, version 6: dynamic client groups (docs/protocol.md,
-- "Facts, labels, selectors"). A client group with a selector has no
-- members of its own: its members are the accepted clients the selector
-- matches when the group is used. by_facts says the selector names a fact:
-- such a group may be neither named by an ACL rule nor nested in another
-- group, since facts are what a machine claims about itself.

ALTER TABLE client_groups ADD COLUMN selector TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE client_groups ADD COLUMN by_facts BOOLEAN NOT NULL DEFAULT FALSE;
