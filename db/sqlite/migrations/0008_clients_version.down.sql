DROP INDEX clients_name;
DROP TRIGGER clients_version_update;
DROP TRIGGER clients_version_delete;
DROP TRIGGER clients_version_insert;
DROP TABLE change_versions;
