DROP TRIGGER run_output_final;
DROP TABLE run_output;
ALTER TABLE runs DROP COLUMN output_size;
