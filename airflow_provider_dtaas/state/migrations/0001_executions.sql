-- DTaaS state store, version 1: one row per DAG run and one per table per run.
CREATE TABLE IF NOT EXISTS dtaas.executions (
    id              BIGSERIAL PRIMARY KEY,
    spec_name       TEXT        NOT NULL,
    dag_id          TEXT        NOT NULL,
    run_id          TEXT        NOT NULL,
    mode            TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    tables_total    INTEGER     NOT NULL DEFAULT 0,
    rows_processed  BIGINT      NOT NULL DEFAULT 0,
    bytes_written   BIGINT      NOT NULL DEFAULT 0,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    error           TEXT,
    UNIQUE (dag_id, run_id)
);

CREATE TABLE IF NOT EXISTS dtaas.table_executions (
    id              BIGSERIAL PRIMARY KEY,
    execution_id    BIGINT      NOT NULL REFERENCES dtaas.executions (id) ON DELETE CASCADE,
    source_table    TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    attempt         INTEGER     NOT NULL DEFAULT 1,
    rows_processed  BIGINT      NOT NULL DEFAULT 0,
    bytes_written   BIGINT      NOT NULL DEFAULT 0,
    seconds         DOUBLE PRECISION,
    destinations    JSONB       NOT NULL DEFAULT '{}'::jsonb,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    error           TEXT,
    UNIQUE (execution_id, source_table)
);

CREATE INDEX IF NOT EXISTS table_executions_status ON dtaas.table_executions (status);
