-- scirectl schema, version 8: the clients' version (docs/protocol.md,
-- "Facts, labels, selectors"). A daemon keeps the names, statuses, labels
-- and facts of the clients in memory to choose machines among them, and
-- reuses them for as long as this version stays the same: every change to
-- those, by whichever daemon, moves it on in the change's own transaction.
-- A client heard from (last_seen) does not: that is the heartbeat's write.
-- A reset or a restore moves it past every value it had (the drivers).
-- change_versions may hold other counters later, one row each. And an
-- index on every client's name: a target named, a client looked up by its
-- name, read one row instead of every client.

CREATE TABLE change_versions (
    name    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO change_versions (name, version) VALUES ('clients', 1);

CREATE TRIGGER clients_version_insert AFTER INSERT ON clients
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_version_delete AFTER DELETE ON clients
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_version_update AFTER UPDATE OF name, status, labels, facts ON clients
WHEN OLD.name IS NOT NEW.name OR OLD.status IS NOT NEW.status
  OR OLD.labels IS NOT NEW.labels OR OLD.facts IS NOT NEW.facts
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE name = 'clients';
END;

CREATE INDEX clients_name ON clients (name);
