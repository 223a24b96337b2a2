-- scirectl schema, version 4: live output (docs/protocol.md, "Output").
--
-- While a run goes on, its agent streams the output (agent.output); the
-- chunks are kept in run_output, each at its offset in the run's output
-- stream, as many as the bound keeps: the first half and the last half,
-- the chunks wholly between them deleted as the stream grows. runs keeps
-- how long the stream is (output_size). The final report stores the
-- bounded output in runs.output as before (its marker line says how many
-- bytes were omitted); the chunks of a run go when it is stored (the
-- trigger), or with the run.

ALTER TABLE runs ADD COLUMN output_size BIGINT NOT NULL DEFAULT 0;

CREATE TABLE run_output (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE DEFERRABLE,
    off    BIGINT NOT NULL,
    len    BIGINT NOT NULL,
    data   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, off)
);

CREATE FUNCTION run_output_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_output WHERE run_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER run_output_final AFTER UPDATE OF output ON runs
    FOR EACH ROW WHEN (NEW.output_size > 0 AND NEW.output <> '')
    EXECUTE FUNCTION run_output_final();
