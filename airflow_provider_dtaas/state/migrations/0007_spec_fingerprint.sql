-- DTaaS state store, version 7: each run records a fingerprint of the spec it ran, so a run whose
-- spec differs from the previous run's writes "spec_changed" to the audit log.
ALTER TABLE dtaas.executions ADD COLUMN IF NOT EXISTS spec_fingerprint TEXT;
