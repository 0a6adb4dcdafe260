"""Snowflake SQL that applies one CDC window to a target table exactly once. Pure.

The window's changes sit in a staging table with the table's columns and ``_DTAAS_OP`` (I, U, D, B),
``_DTAAS_LSN`` and ``_DTAAS_SEQVAL`` (``0x`` + 20 upper-case hex digits: text order is LSN order).
One MERGE reduces them to the last change per key — by (LSN, seqval); before-images are skipped —
and applies it only where it is newer than the (LSN, seqval) the target row holds, so a replayed
window changes nothing. A primary-key update arrives from SQL Server CDC as a delete of the old key
and an insert of the new one, and is applied as such. Deletes remove the row, or with soft deletes
set ``_DTAAS_DELETED`` and keep the row (and its LSN, which keeps guarding it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from airflow_provider_dtaas.core.identifiers import quote_snowflake, quote_snowflake_path
from airflow_provider_dtaas.core.snowflake_sql import staged_value

OP, LSN, SEQVAL, DELETED, SYNCED_AT, RUN_ID = (
    "_DTAAS_OP",
    "_DTAAS_LSN",
    "_DTAAS_SEQVAL",
    "_DTAAS_DELETED",
    "_DTAAS_SYNCED_AT",
    "_DTAAS_RUN_ID",
)
CDC_TARGET_COLUMNS = ((LSN, "VARCHAR(22)"), (SEQVAL, "VARCHAR(22)"), (DELETED, "BOOLEAN"))
CHANGE_STAGING_COLUMNS = ((OP, "VARCHAR(1)"), (LSN, "VARCHAR(22)"), (SEQVAL, "VARCHAR(22)"))


def merge_window_sql(
    database: str,
    schema: str,
    target: str,
    staging: str,
    *,
    key: Sequence[str],
    columns: Sequence[str],
    soft_delete: bool,
    synced_at: bool = True,
    run_id: str | None = None,
    variant: Collection[str] = (),
) -> tuple[str, tuple[Any, ...]]:
    """One MERGE of the staging table's changes into the target (``columns`` include ``key``), and
    its bound values; the metadata columns get the time of the MERGE and the run id when asked.
    ``variant`` columns are parsed from their JSON text as the changes are reduced."""
    if not key:
        raise ValueError(f"table {target}: CDC needs a key to merge on")
    missing = [k for k in key if k not in columns]
    if missing:
        raise ValueError(f"key columns {missing} are not among the loaded columns")
    q = quote_snowflake
    data = [q(c) for c in columns]
    partition = ", ".join(q(k) for k in key)
    picked = [f"{staged_value(c, variant=True)} AS {q(c)}" if c in variant else q(c) for c in columns]
    reduced = (
        f"SELECT {', '.join([*picked, q(OP), q(LSN), q(SEQVAL)])}"
        f" FROM {quote_snowflake_path(database, schema, staging)} WHERE {q(OP)} <> 'B'"
        f" QUALIFY ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {q(LSN)} DESC, {q(SEQVAL)} DESC) = 1"
    )
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    newer = (
        f"(t.{q(LSN)} IS NULL OR s.{q(LSN)} > t.{q(LSN)}"
        f" OR (s.{q(LSN)} = t.{q(LSN)} AND s.{q(SEQVAL)} > t.{q(SEQVAL)}))"
    )
    stamps: list[tuple[str, str]] = [(q(SYNCED_AT), "CURRENT_TIMESTAMP()")] if synced_at else []
    if run_id is not None:
        stamps.append((q(RUN_ID), "%s"))
    position = ", ".join(
        [f"{q(LSN)} = s.{q(LSN)}", f"{q(SEQVAL)} = s.{q(SEQVAL)}"] + [f"{c} = {v}" for c, v in stamps]
    )
    on_delete = f"UPDATE SET {q(DELETED)} = TRUE, {position}" if soft_delete else "DELETE"
    updates = ", ".join(f"{c} = s.{c}" for c in data if c not in {q(k) for k in key})
    set_clause = f"{updates}, " if updates else ""
    inserted = [*data, q(LSN), q(SEQVAL), q(DELETED)] + [c for c, _v in stamps]
    values = [f"s.{c}" for c in data] + [f"s.{q(LSN)}", f"s.{q(SEQVAL)}", "FALSE"] + [v for _c, v in stamps]
    # run_id is bound in each branch that sets the position (a hard delete sets none) and the insert
    bound = (run_id,) * (3 if soft_delete else 2) if run_id is not None else ()
    sql = (
        f"MERGE INTO {quote_snowflake_path(database, schema, target)} t USING ({reduced}) s ON {on}"
        f" WHEN MATCHED AND s.{q(OP)} = 'D' AND {newer} THEN {on_delete}"
        f" WHEN MATCHED AND s.{q(OP)} <> 'D' AND {newer}"
        f" THEN UPDATE SET {set_clause}{q(DELETED)} = FALSE, {position}"
        f" WHEN NOT MATCHED AND s.{q(OP)} <> 'D'"
        f" THEN INSERT ({', '.join(inserted)}) VALUES ({', '.join(values)})"
    )
    return sql, bound
