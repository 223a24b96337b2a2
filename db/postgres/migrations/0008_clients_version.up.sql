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
    name    TEXT COLLATE "C" PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO change_versions (name, version) VALUES ('clients', 1);

-- Once per transaction: a reader sees the change only at commit, so one
-- step is enough, and a transaction that changes many clients (a restore,
-- labels set on thousands) must not update the one row thousands of times,
-- each update a new row version to walk past. The mark is the
-- transaction's own (set_config's is_local) and is undone with it, or with
-- its savepoint. The row's lock, held to the end of the transaction, puts
-- the writers of clients one after another from their first change on: a
-- transaction that changes several clients locks them all before it
-- changes the first (SetClientLabels), so that it never waits for a
-- client's row while it holds this one.
CREATE FUNCTION clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('scirectl.clients_changed', true) IS DISTINCT FROM 'yes' THEN
        UPDATE change_versions SET version = version + 1 WHERE name = 'clients';
        PERFORM set_config('scirectl.clients_changed', 'yes', true);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_version_insert AFTER INSERT ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_changed();
CREATE TRIGGER clients_version_delete AFTER DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_changed();
CREATE TRIGGER clients_version_update AFTER UPDATE OF name, status, labels, facts ON clients
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.labels IS DISTINCT FROM NEW.labels OR OLD.facts IS DISTINCT FROM NEW.facts)
    EXECUTE FUNCTION clients_changed();

CREATE INDEX clients_name ON clients (name);
