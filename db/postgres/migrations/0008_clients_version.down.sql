DROP INDEX clients_name;
DROP TRIGGER clients_version_update ON clients;
DROP TRIGGER clients_version_delete ON clients;
DROP TRIGGER clients_version_insert ON clients;
DROP FUNCTION clients_changed();
DROP TABLE change_versions;
