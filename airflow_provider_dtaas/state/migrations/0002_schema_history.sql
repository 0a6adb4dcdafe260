-- DTaaS state store, version 2: the schema changes each load found and applied (or left, for
-- dropped and ignored columns) on a target; a refused change fails the table and is in its error.
CREATE TABLE IF NOT EXISTS dtaas.schema_history (
    id              BIGSERIAL PRIMARY KEY,
    execution_id    BIGINT      REFERENCES dtaas.executions (id) ON DELETE SET NULL,
    source_table    TEXT        NOT NULL,
    destination     TEXT        NOT NULL,
    target          TEXT        NOT NULL,
    change          TEXT        NOT NULL,
    column_name     TEXT        NOT NULL,
    old_type        TEXT,
    new_type        TEXT,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS schema_history_table ON dtaas.schema_history (source_table, recorded_at);
