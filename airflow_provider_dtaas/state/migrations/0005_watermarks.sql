-- DTaaS state store, version 5: mode incremental keeps, beside a table's position (a window counter
-- that guards the MERGE), the watermark value it has read up to; each window records its bounds.
ALTER TABLE dtaas.cdc_positions ADD COLUMN IF NOT EXISTS watermark JSONB;
ALTER TABLE dtaas.cdc_windows ADD COLUMN IF NOT EXISTS watermark_range JSONB;
