ALTER TABLE client_groups DROP COLUMN selector;
ALTER TABLE client_groups DROP COLUMN by_facts;
