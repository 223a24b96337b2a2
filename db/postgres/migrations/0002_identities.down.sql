-- Back to version 1: client rules keep the name they display as their
-- target, which version 1 matches by name.
ALTER TABLE acl_rules DROP COLUMN target_id;
