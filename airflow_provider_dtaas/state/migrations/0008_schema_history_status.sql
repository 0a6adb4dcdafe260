-- DTaaS state store, version 8: whether each recorded schema change was applied with its load
-- ('applied': the ADD, ALTER, kept or left-out column of handle_schema_drift) or refused by the
-- policy ('refused': the table failed and its target was left as it was).
ALTER TABLE dtaas.schema_history ADD COLUMN IF NOT EXISTS status TEXT NOT NULL DEFAULT 'applied';

CREATE INDEX IF NOT EXISTS schema_history_execution ON dtaas.schema_history (execution_id);
