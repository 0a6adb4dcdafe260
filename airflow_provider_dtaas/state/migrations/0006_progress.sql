-- DTaaS state store, version 6: live progress. Each chunk of a table load records its rows and bytes
-- so far (absolute values, so a retried chunk starts again from zero instead of counting twice);
-- samples of a table's running total feed the throughput chart; the audit log records who asked for
-- what from the progress view.
ALTER TABLE dtaas.table_executions
    ADD COLUMN IF NOT EXISTS estimated_rows BIGINT,
    ADD COLUMN IF NOT EXISTS failed_rows    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS lsn_start      TEXT,
    ADD COLUMN IF NOT EXISTS lsn_end        TEXT,
    ADD COLUMN IF NOT EXISTS progress_at    TIMESTAMPTZ;
ALTER TABLE dtaas.executions
    ADD COLUMN IF NOT EXISTS failed_rows    BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS dtaas.chunk_progress (
    execution_id    BIGINT      NOT NULL REFERENCES dtaas.executions (id) ON DELETE CASCADE,
    source_table    TEXT        NOT NULL,
    chunk           INTEGER     NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('running', 'done')),
    attempt         INTEGER     NOT NULL DEFAULT 1,
    rows_processed  BIGINT      NOT NULL DEFAULT 0,
    bytes_read      BIGINT      NOT NULL DEFAULT 0,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, source_table, chunk)
);

CREATE TABLE IF NOT EXISTS dtaas.progress_samples (
    execution_id    BIGINT      NOT NULL REFERENCES dtaas.executions (id) ON DELETE CASCADE,
    source_table    TEXT        NOT NULL,
    sampled_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    rows_processed  BIGINT      NOT NULL,
    bytes_read      BIGINT      NOT NULL
);
CREATE INDEX IF NOT EXISTS progress_samples_by_run ON dtaas.progress_samples (execution_id, sampled_at);

CREATE TABLE IF NOT EXISTS dtaas.audit_log (
    id              BIGSERIAL   PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor           TEXT        NOT NULL,
    action          TEXT        NOT NULL,
    dag_id          TEXT,
    run_id          TEXT,
    detail          JSONB       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_by_dag ON dtaas.audit_log (dag_id, at);
