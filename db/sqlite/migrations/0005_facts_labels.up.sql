-- scirectl schema, version 5: facts and labels (docs/protocol.md, "Facts,
-- labels, selectors"). A client keeps the facts its agent sent (a JSON
-- object of strings) with their hash, which the heartbeat tells the agent
-- so that it sends them again only when they changed, and the labels
-- operators gave it (a JSON object of strings).

ALTER TABLE clients ADD COLUMN facts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN facts_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
