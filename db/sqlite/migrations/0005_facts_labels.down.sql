ALTER TABLE clients DROP COLUMN facts;
ALTER TABLE clients DROP COLUMN facts_hash;
ALTER TABLE clients DROP COLUMN labels;
