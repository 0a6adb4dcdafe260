-- DTaaS state store, version 3: each table's CDC position, per spec (DAG): the last change applied
-- to every destination of the table. It only moves forward (see DtaasStateHook.advance_position).
CREATE TABLE IF NOT EXISTS dtaas.cdc_positions (
    dag_id            TEXT        NOT NULL,
    source_table      TEXT        NOT NULL,
    capture_instance  TEXT        NOT NULL,
    lsn               BYTEA       NOT NULL CHECK (length(lsn) = 10),
    seqval            BYTEA       NOT NULL CHECK (length(seqval) = 10),
    run_id            TEXT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, source_table)
);
