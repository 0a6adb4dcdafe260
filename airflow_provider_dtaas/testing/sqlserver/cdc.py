"""Change data capture: change tables, the capture of INSERT / UPDATE / DELETE on tracked tables, LSNs and
the ``cdc.fn_cdc_get_all_changes_<capture_instance>`` function.

``sys.sp_cdc_enable_table`` (``procedures``) creates ``cdc.<capture_instance>_CT`` through
``create_change_table``. A writing statement on a tracked table runs between ``Capture.before`` and
``Capture.after``: the table is copied before the statement and compared with itself after it (by primary
key, or by DuckDB's rowid for heaps), and the differences become change rows: 1 delete, 2 insert, 3 and 4
the before and after images of an update (sharing one ``__$seqval``). A changed key is a delete and an
insert. Rows of an open transaction have no ``__$start_lsn`` yet; ``Capture.commit`` gives them one new LSN
just before the DuckDB COMMIT and records the commit time in ``cdc.lsn_time_mapping``. A rollback
discards them with the rest of the transaction. There is no capture job: changes are visible at commit.

LSNs are binary(10) and compare as big-endian bytes (DuckDB compares BLOBs bytewise).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb
import sqlglot
from duckdb import sqltypes as types
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import catalog
from airflow_provider_dtaas.testing.sqlserver.ddl import quote
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, invalid_object, not_supported
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, CDC

E = TypeVar("E", bound=exp.Expr)

LSN_VLF = 0x25
LSN_SIZE = 10
ZERO_LSN = bytes(LSN_SIZE)
ALL_CHANGES = "fn_cdc_get_all_changes_"
ROW_FILTERS = ("all", "all update old")
_BEFORE = "__dtaas_cdc_before"
_CHANGES = "__dtaas_cdc_changes"
_META = ('"__$start_lsn"', '"__$end_lsn"', '"__$seqval"', '"__$operation"', '"__$update_mask"')


def _changed(column_id: int) -> str:
    """The flag column of the compared changes: whether an update changed the column."""
    return quote(f"__$changed_{column_id}")


def _join(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


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
    positions = [(i + 1, c.name) for i, c in enumerate(table.columns)]
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
        f"CREATE TABLE {change_table(instance)} AS SELECT CAST(NULL AS BLOB) AS {_META[0]}, "
        f"CAST(NULL AS BLOB) AS {_META[1]}, CAST(NULL AS BLOB) AS {_META[2]}, "
        f"CAST(NULL AS INTEGER) AS {_META[3]}, CAST(NULL AS BLOB) AS {_META[4]}, "
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


def cleanup(con: duckdb.DuckDBPyConnection, instance: str, low_water_mark: bytes) -> None:
    """``sys.sp_cdc_cleanup_change_table``: change rows below the mark go, the instance's min LSN rises."""
    found = instance_columns(con, instance)
    if found is None:
        raise SqlServerError(
            22963,
            f"Parameter '@capture_instance' cannot be '{instance}'. The capture instance does not exist in "
            "the current database. Specify a valid capture instance name.",
        )
    name, start_lsn, _ = found
    con.execute(f'DELETE FROM {change_table(name)} WHERE "__$start_lsn" < ?', [low_water_mark])
    con.execute(
        f"UPDATE {CDC}.change_tables SET start_lsn = ? WHERE capture_instance = ?",
        [max(start_lsn, low_water_mark), name],
    )


# -- capture -------------------------------------------------------------------------------------


class Capture:
    """One session's capture: the before image of the statement running and the change tables its open
    transaction wrote to (whose new rows get the transaction's LSN at commit)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._pending: set[str] = set()
        self._seqval = 0  # change rows of the open transaction so far

    def instances(self, table: catalog.TableDefinition | None) -> list[tuple[str, list[tuple[int, str]]]]:
        """The capture instances of a table with their captured (column id, name)s."""
        if table is None or table.object_id is None:
            return []
        rows = self._con.execute(
            f"SELECT t.capture_instance, c.column_id, c.column_name FROM {CDC}.change_tables t "
            f"JOIN {CDC}.captured_columns c USING (object_id) WHERE t.source_object_id = ? "
            "ORDER BY t.capture_instance, c.column_ordinal",
            [table.object_id],
        ).fetchall()
        found: dict[str, list[tuple[int, str]]] = {}
        for instance, column_id, name in rows:
            found.setdefault(instance, []).append((column_id, name))
        return list(found.items())

    def before(self, table: catalog.TableDefinition) -> None:
        key = self._key(table)
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_BEFORE}")
        self._con.execute(f"CREATE TEMP TABLE {_BEFORE} AS SELECT {key}, * FROM {self._source(table)}")

    def after(
        self, table: catalog.TableDefinition, instances: list[tuple[str, list[tuple[int, str]]]]
    ) -> None:
        """Turn the differences since ``before`` into change rows of every capture instance."""
        key = self._key(table)
        keys = self._key_names(table)
        on = _join(keys, "b", "a")
        columns = [quote(c.name) for c in table.columns]
        ids = range(1, len(columns) + 1)
        flags = ", ".join(
            f"b.{c} IS DISTINCT FROM a.{c} AS {_changed(i)}" for i, c in enumerate(columns, start=1)
        )
        no_flags = ", ".join(f"false AS {_changed(i)}" for i in ids)
        order = ", ".join(keys)
        b_cols = ", ".join(f"b.{c}" for c in columns)
        a_cols = ", ".join(f"a.{c}" for c in columns)
        after = f"(SELECT {key}, * FROM {self._source(table)})"
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_CHANGES}")
        self._con.execute(
            f"""CREATE TEMP TABLE {_CHANGES} AS
            WITH updated AS (SELECT b.*, {flags} FROM {_BEFORE} b JOIN {after} a ON {on}
                             WHERE ({b_cols}) IS DISTINCT FROM ({a_cols})),
            updated_after AS (SELECT a.*, {", ".join(f"u.{_changed(i)}" for i in ids)}
                              FROM updated u JOIN {after} a ON {_join(keys, "u", "a")}),
            changes AS (
                SELECT 1 AS op, 0 AS grp, b.*, {no_flags} FROM {_BEFORE} b ANTI JOIN {after} a ON {on}
                UNION ALL BY NAME SELECT 3 AS op, 1 AS grp, * FROM updated
                UNION ALL BY NAME SELECT 4 AS op, 1 AS grp, * FROM updated_after
                UNION ALL BY NAME SELECT 2 AS op, 2 AS grp, a.*, {no_flags} FROM {after} a
                    ANTI JOIN {_BEFORE} b ON {on})
            SELECT *, dense_rank() OVER (ORDER BY grp, {order}) AS "__$n" FROM changes"""
        )
        (count,) = self._con.execute(f'SELECT coalesce(max("__$n"), 0) FROM {_CHANGES}').fetchall()[0]
        if count:
            for instance, captured in instances:
                self._write(instance, captured)
                self._pending.add(instance)
            self._seqval += int(count)
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_CHANGES}")
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_BEFORE}")

    def _write(self, instance: str, captured: list[tuple[int, str]]) -> None:
        size = (max(column_id for column_id, _ in captured) + 7) // 8
        every = sum(1 << (column_id - 1) for column_id, _ in captured).to_bytes(size, "big").hex()
        parts = []
        for byte in reversed(range(size)):
            bits = [
                f"CASE WHEN {_changed(column_id)} THEN {1 << (column_id - 1 - 8 * byte)} ELSE 0 END"
                for column_id, _ in captured
                if 8 * byte < column_id <= 8 * byte + 8
            ]
            parts.append(f"unhex(lpad(to_hex(CAST({' + '.join(bits) or '0'} AS BIGINT)), 2, '0'))")
        mask = f"CASE WHEN op IN (1, 2) THEN unhex('{every}') ELSE {' || '.join(parts)} END"
        seqval = f"unhex('{LSN_VLF:08x}' || lpad(to_hex(CAST({self._seqval} + \"__$n\" AS BIGINT)), 12, '0'))"
        names = ", ".join(quote(name) for _, name in captured)
        self._con.execute(
            f'INSERT INTO {change_table(instance)} ({", ".join(_META)}, {names}, "__$command_id") '
            f'SELECT NULL, NULL, {seqval}, op, {mask}, {names}, 1 FROM {_CHANGES} ORDER BY "__$n", op'
        )

    def commit(self) -> None:
        """Give the open transaction's change rows their LSN (before the DuckDB COMMIT)."""
        if self._pending:
            lsn = next_lsn(self._con)
            for instance in sorted(self._pending):
                self._con.execute(
                    f'UPDATE {change_table(instance)} SET "__$start_lsn" = ? WHERE "__$start_lsn" IS NULL',
                    [lsn],
                )
            record_commit(self._con, lsn)
        self.end()

    def end(self) -> None:
        """After COMMIT or ROLLBACK: nothing pending."""
        self._pending.clear()
        self._seqval = 0

    @staticmethod
    def _source(table: catalog.TableDefinition) -> str:
        return f"{quote(table.schema)}.{quote(table.name)}"

    @staticmethod
    def _key_names(table: catalog.TableDefinition) -> list[str]:
        primary = table.primary_key()
        if primary is None:
            return ['"__$rid"']
        return [quote("__$key_" + str(i)) for i in range(len(primary.columns))]

    def _key(self, table: catalog.TableDefinition) -> str:
        primary = table.primary_key()
        if primary is None:
            return 'rowid AS "__$rid"'
        return ", ".join(
            f"{quote(name)} AS {quote('__$key_' + str(i))}" for i, name in enumerate(primary.column_names)
        )


def record_commit(con: duckdb.DuckDBPyConnection, lsn: bytes) -> None:
    con.execute(
        f"INSERT INTO {CDC}.lsn_time_mapping VALUES (?, current_localtimestamp(), current_localtimestamp(), "
        "?, ?)",
        [lsn, lsn, lsn],
    )


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
        f"[{c}]" for c in ("__$start_lsn", "__$seqval", "__$operation", "__$update_mask", *columns)
    )
    where = f"[__$start_lsn] BETWEEN 0x{bytes(from_lsn).hex()} AND 0x{bytes(to_lsn).hex()}"
    if not keep_before:
        where += " AND [__$operation] <> 3"
    query = sqlglot.parse_one(
        f"SELECT {selected} FROM cdc.[{name}_CT] WHERE {where} "
        "ORDER BY [__$start_lsn], [__$seqval], [__$operation]",
        read="tsql",
    )
    alias = node.alias or function.name
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias)))


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
