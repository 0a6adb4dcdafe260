-- DTaaS state store, version 4: every CDC window a table applied (or began to apply), its counts and
-- lag, and the snapshots and capture-instance switches between windows. A window that began and did
-- not commit is read again with the same bounds, so a retried run writes the same S3 folder.
CREATE TABLE IF NOT EXISTS dtaas.cdc_windows (
    window_id         BIGSERIAL   PRIMARY KEY,
    dag_id            TEXT        NOT NULL,
    source_table      TEXT        NOT NULL,
    kind              TEXT        NOT NULL DEFAULT 'changes'
                      CHECK (kind IN ('changes', 'snapshot', 'resnapshot', 'start', 'switch')),
    capture_instance  TEXT        NOT NULL,
    from_lsn          BYTEA       CHECK (length(from_lsn) = 10),
    to_lsn            BYTEA       NOT NULL CHECK (length(to_lsn) = 10),
    run_id            TEXT        NOT NULL,
    detail            TEXT,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    committed_at      TIMESTAMPTZ,
    changes           BIGINT,
    inserted          BIGINT,
    updated           BIGINT,
    deleted           BIGINT,
    last_commit_time  TIMESTAMP,
    lag_seconds       DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS cdc_windows_by_table ON dtaas.cdc_windows (dag_id, source_table, window_id);
