"""Change data capture: change tables, LSNs, retention cleanup, disabling a capture instance and the
``cdc.fn_cdc_get_all_changes_<capture_instance>`` function.

``sys.sp_cdc_enable_table`` (``procedures``) creates ``cdc.<capture_instance>_CT`` through
``create_change_table``; ``capture`` fills it as the table changes. Rows of an open transaction have no
``__$start_lsn`` yet; at commit they get one new LSN and the commit time goes to
``cdc.lsn_time_mapping``. There is no capture job: changes are visible at commit. ``disable`` is
``sys.sp_cdc_disable_table``: the instance's metadata rows and change table go, so its functions answer
as for an instance that never existed. The translator sees a change table's captured columns with their
source columns' declared types (``change_table_definition``), so CONVERT, CLR methods and comparisons
work on change rows as on the table. Not emulated: ``cdc.ddl_history`` and ``cdc.index_columns``.

LSNs are binary(10) and compare as big-endian bytes (DuckDB compares BLOBs bytewise).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import duckdb
import sqlglot
from duckdb import sqltypes as types
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import catalog
from airflow_provider_dtaas.testing.sqlserver.ddl import quote
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, invalid_object, not_supported
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, CDC
from airflow_provider_dtaas.testing.sqlserver.types import BinaryType, IntType, SqlType

E = TypeVar("E", bound=exp.Expr)

LSN_VLF = 0x25
LSN_SIZE = 10
ZERO_LSN = bytes(LSN_SIZE)
ALL_CHANGES = "fn_cdc_get_all_changes_"
ROW_FILTERS = ("all", "all update old")
META = ('"__$start_lsn"', '"__$end_lsn"', '"__$seqval"', '"__$operation"', '"__$update_mask"')


def change_table(instance: str) -> str:
    return f"{CDC}.{quote(instance + '_CT')}"


def next_lsn(con: duckdb.DuckDBPyConnection) -> bytes:
    """A new log sequence number, binary(10): VLF, block, slot; increasing within the database."""
    (number,) = con.execute(f"SELECT nextval('{CATALOG}.lsns')").fetchall()[0]
    return struct.pack(">IIH", LSN_VLF, int(number), 1)


def add_to_lsn(lsn: bytes | None, step: int) -> bytes | None:
    """``sys.fn_cdc_increment_lsn`` (step 1) and ``sys.fn_cdc_decrement_lsn`` (step -1)."""
    if lsn is None:
        return None
    number = max(0, min(int.from_bytes(lsn, "big") + step, 2 ** (8 * LSN_SIZE) - 1))
    return number.to_bytes(LSN_SIZE, "big")


def _increment(lsn: bytes) -> bytes | None:
    return add_to_lsn(bytes(lsn), 1)


def _decrement(lsn: bytes) -> bytes | None:
    return add_to_lsn(bytes(lsn), -1)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions behind the LSN arithmetic (on the root connection: every cursor sees them)."""
    con.create_function("dtaas_cdc_increment_lsn", _increment, [types.BLOB], types.BLOB)
    con.create_function("dtaas_cdc_decrement_lsn", _decrement, [types.BLOB], types.BLOB)


# -- change tables -------------------------------------------------------------------------------


def captured_columns(table: catalog.TableDefinition, column_list: object) -> list[tuple[int, str]]:
    """(column id, name) of the captured columns: all when ``@captured_column_list`` is NULL."""
    ids = table.column_ids()
    positions = [(ids[c.name.lower()], c.name) for c in table.columns]
    if column_list is None or not str(column_list).strip():
        return positions
    chosen = []
    for written in str(column_list).split(","):
        name = written.strip().strip('[]"')
        found = next(((i, n) for i, n in positions if n.lower() == name.lower()), None)
        if found is None:
            raise SqlServerError(
                22934,
                f"The column '{name}' in the @captured_column_list parameter is not a valid column of source "
                f"table '{table.qualified}'. Specify a valid column in @captured_column_list.",
            )
        chosen.append(found)
    return sorted(set(chosen))


def create_change_table(
    con: duckdb.DuckDBPyConnection, change_table_id: int, instance: str, table: catalog.TableDefinition,
    columns: list[tuple[int, str]],
) -> None:  # fmt: skip
    """``cdc.<instance>_CT`` with the source's storage types, and its ``cdc.captured_columns`` rows."""
    con.execute(
        f"CREATE TABLE {change_table(instance)} AS SELECT CAST(NULL AS BLOB) AS {META[0]}, "
        f"CAST(NULL AS BLOB) AS {META[1]}, CAST(NULL AS BLOB) AS {META[2]}, "
        f"CAST(NULL AS INTEGER) AS {META[3]}, CAST(NULL AS BLOB) AS {META[4]}, "
        + "".join(f"{quote(name)}, " for _, name in columns)
        + f'CAST(NULL AS INTEGER) AS "__$command_id" FROM {quote(table.schema)}.{quote(table.name)} LIMIT 0'
    )
    for ordinal, (column_id, name) in enumerate(columns, start=1):
        declared = table.column(name)
        kind = declared.sql_type.name if declared is not None else "sql_variant"
        con.execute(
            f"INSERT INTO {CDC}.captured_columns VALUES (?, ?, ?, ?, ?, ?)",
            [change_table_id, name, column_id, kind, ordinal, bool(declared and declared.is_computed)],
        )


_LSN = BinaryType("binary", 10)
_META_TYPES: tuple[tuple[str, SqlType], ...] = (
    ("__$start_lsn", _LSN),
    ("__$end_lsn", _LSN),
    ("__$seqval", _LSN),
    ("__$operation", IntType("int")),
    ("__$update_mask", BinaryType("varbinary", 128)),
)


def change_table_definition(con: duckdb.DuckDBPyConnection, name: str) -> catalog.TableDefinition | None:
    """``cdc.<instance>_CT`` as a declared table: each captured column with its source column's declared
    type (which an ALTER COLUMN carries into the change table too), so expressions over change rows (and
    over ``cdc.fn_cdc_get_all_changes_*``, which reads this table) see the types as on the source table.

    A captured column since dropped from the source has no declared type left; it is left out, and
    expressions over it see only its storage type."""
    if not name.lower().endswith("_ct"):
        return None
    rows = con.execute(
        f"SELECT t.capture_instance, o.schema_name, o.table_name, c.column_name, c.column_id "
        f"FROM {CDC}.change_tables t JOIN {CDC}.captured_columns c USING (object_id) "
        f"JOIN {CATALOG}.objects o ON o.object_id = t.source_object_id "
        "WHERE lower(t.capture_instance) = lower(?) ORDER BY c.column_ordinal",
        [name[: -len("_CT")]],
    ).fetchall()
    if not rows:
        return None
    instance, schema, table = rows[0][:3]
    source = catalog.lookup(con, schema, table)
    by_id = {c.column_id: c for c in source.columns} if source is not None else {}
    meta = [catalog.DeclaredColumn(column, sql_type) for column, sql_type in _META_TYPES]
    captured = [
        replace(
            by_id[column_id], name=column, nullable=True, identity=None, definition=None, computed_sql=None
        )
        for _, _, _, column, column_id in rows
        if column_id in by_id
    ]
    command_id = catalog.DeclaredColumn("__$command_id", IntType("int"))
    return catalog.TableDefinition("cdc", f"{instance}_CT", (*meta, *captured, command_id))


def instance_columns(con: duckdb.DuckDBPyConnection, instance: str) -> tuple[str, bytes, list[str]] | None:
    """(capture instance as created, its min LSN, its captured columns), or None for an unknown one."""
    rows = con.execute(
        f"SELECT t.capture_instance, t.start_lsn, c.column_name FROM {CDC}.change_tables t "
        f"JOIN {CDC}.captured_columns c USING (object_id) WHERE lower(t.capture_instance) = lower(?) "
        "ORDER BY c.column_ordinal",
        [instance],
    ).fetchall()
    if not rows:
        return None
    return rows[0][0], bytes(rows[0][1]), [row[2] for row in rows]


def unknown_instance(instance: str) -> SqlServerError:
    return SqlServerError(
        22963,
        f"Parameter '@capture_instance' cannot be '{instance}'. The capture instance does not exist in "
        "the current database. Specify a valid capture instance name.",
    )


def cleanup(con: duckdb.DuckDBPyConnection, instance: str, low_water_mark: bytes) -> None:
    """``sys.sp_cdc_cleanup_change_table``: change rows below the mark go, the instance's min LSN rises."""
    found = instance_columns(con, instance)
    if found is None:
        raise unknown_instance(instance)
    name, start_lsn, _ = found
    con.execute(f'DELETE FROM {change_table(name)} WHERE "__$start_lsn" < ?', [low_water_mark])
    con.execute(
        f"UPDATE {CDC}.change_tables SET start_lsn = ? WHERE capture_instance = ?",
        [max(start_lsn, low_water_mark), name],
    )


def record_commit(con: duckdb.DuckDBPyConnection, lsn: bytes) -> None:
    con.execute(
        f"INSERT INTO {CDC}.lsn_time_mapping VALUES (?, current_localtimestamp(), current_localtimestamp(), "
        "?, ?)",
        [lsn, lsn, lsn],
    )


def disable(con: duckdb.DuckDBPyConnection, table: catalog.TableDefinition, instance: str) -> None:
    """``sys.sp_cdc_disable_table``: one capture instance of the table, or all of them for ``'all'``;
    22963 (as for cleanup) when the table has no such instance."""
    rows = con.execute(
        f"SELECT capture_instance, object_id FROM {CDC}.change_tables WHERE source_object_id = ? "
        "AND (lower(capture_instance) = lower(?) OR lower(?) = 'all')",
        [table.object_id, instance, instance],
    ).fetchall()
    if not rows:
        raise unknown_instance(instance)
    for name, change_table_id in rows:
        con.execute(f"DROP TABLE IF EXISTS {change_table(name)}")
        con.execute(f"DELETE FROM {CDC}.captured_columns WHERE object_id = ?", [change_table_id])
        con.execute(f"DELETE FROM {CDC}.change_tables WHERE object_id = ?", [change_table_id])


# -- cdc.fn_cdc_get_all_changes_<capture_instance> -------------------------------------------------


def all_changes_call(node: exp.Table) -> str | None:
    """The capture instance a ``cdc.fn_cdc_get_all_changes_<instance>(...)`` table names, else None."""
    function = node.this
    schema = node.args.get("db")
    if not isinstance(function, exp.Anonymous) or schema is None or schema.name.lower() != "cdc":
        return None
    name = function.name
    return name[len(ALL_CHANGES) :] if name.lower().startswith(ALL_CHANGES) else None


def insufficient_arguments(function: str | None = None) -> SqlServerError:
    """Msg 313. For an LSN range outside the instance's validity interval (or NULL, or reversed) or an
    unknown row filter SQL Server names no function: ``cdc.fn_cdc_get_all_changes_ ... .``; for a call
    with too few arguments it names the function called."""
    named = f"cdc.{function}." if function else f"cdc.{ALL_CHANGES} ... ."
    return SqlServerError(
        313,
        f"An insufficient number of arguments were supplied for the procedure or function {named}",
        state=3,
    )


def all_changes(
    con: duckdb.DuckDBPyConnection, node: exp.Table, arguments: tuple[object, object, object]
) -> exp.Expr:
    """The T-SQL subquery that stands for the function call, once its arguments are evaluated."""
    function = node.this
    assert isinstance(function, exp.Anonymous)
    instance = function.name[len(ALL_CHANGES) :]
    found = instance_columns(con, instance)
    if found is None:
        raise invalid_object(f"cdc.{function.this}")
    name, min_lsn, columns = found
    from_lsn, to_lsn, row_filter = arguments
    if not isinstance(row_filter, str) or " ".join(row_filter.lower().split()) not in ROW_FILTERS:
        raise insufficient_arguments()
    (max_lsn,) = con.execute(f"SELECT max(start_lsn) FROM {CDC}.lsn_time_mapping").fetchall()[0]
    if (
        not isinstance(from_lsn, bytes | bytearray)
        or not isinstance(to_lsn, bytes | bytearray)
        or bytes(from_lsn) < min_lsn
        or max_lsn is None
        or bytes(to_lsn) > bytes(max_lsn)
        or bytes(from_lsn) > bytes(to_lsn)
    ):
        raise insufficient_arguments()
    keep_before = " ".join(row_filter.lower().split()) == "all update old"
    selected = ", ".join(
        _bracketed(c) for c in ("__$start_lsn", "__$seqval", "__$operation", "__$update_mask", *columns)
    )
    where = f"[__$start_lsn] BETWEEN 0x{bytes(from_lsn).hex()} AND 0x{bytes(to_lsn).hex()}"
    if not keep_before:
        where += " AND [__$operation] <> 3"
    query = sqlglot.parse_one(
        f"SELECT {selected} FROM cdc.{_bracketed(name + '_CT')} WHERE {where} "
        "ORDER BY [__$start_lsn], [__$seqval], [__$operation]",
        read="tsql",
    )
    alias = node.alias or function.name
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _bracketed(name: str) -> str:
    """A name as a T-SQL identifier: in brackets, a ``]`` in it doubled."""
    return "[" + name.replace("]", "]]") + "]"


def expand_all_changes(
    con: duckdb.DuckDBPyConnection, statement: E, evaluate: Callable[[exp.Select], tuple[Any, ...]]
) -> E:
    """``statement`` with each ``cdc.fn_cdc_get_all_changes_<instance>(from, to, filter)`` in FROM replaced
    by a query of the change table; ``evaluate`` runs ``SELECT from, to, filter`` first, so the arguments
    can be any expressions (parameters, ``sys.fn_cdc_*`` calls) and are checked as SQL Server does."""
    for node in statement.find_all(exp.Anonymous):
        if node.name.lower().startswith("fn_cdc_get_net_changes_"):
            raise not_supported("cdc.fn_cdc_get_net_changes_*")
    if not any(all_changes_call(t) is not None for t in statement.find_all(exp.Table)):
        return statement
    statement = statement.copy()
    for table in [t for t in statement.find_all(exp.Table) if all_changes_call(t) is not None]:
        function = table.this
        if len(function.expressions) < 3:
            raise insufficient_arguments(function.name)
        if len(function.expressions) > 3:
            raise SqlServerError(
                8144, f"Procedure or function cdc.{function.this} has too many arguments specified."
            )
        from_lsn, to_lsn, row_filter = evaluate(exp.select(*(a.copy() for a in function.expressions)))
        table.replace(all_changes(con, table, (from_lsn, to_lsn, row_filter)))
    return statement
