"""The capture of INSERT / UPDATE / DELETE on tables that CDC (``cdc``) or change tracking
(``change_tracking``) follows.

A writing statement on such a table runs between ``Capture.before`` and ``Capture.after``: the table is
copied before the statement and compared with itself after it (by primary key, or by DuckDB's rowid for
heaps), and the differences become change rows: 1 delete, 2 insert, 3 and 4 the before and after images of
an update (sharing one ``__$seqval``). A changed key is a delete and an insert. Each capture instance
writes the columns it captured, by column id: a column dropped since the instance was created is NULL in
new change rows, a column added since is not captured (as SQL Server does). Change tracking records the
keys of the changed rows. Rows of an open transaction have no LSN or version yet; ``Capture.commit`` gives
them one just before the DuckDB COMMIT. A rollback discards them with the rest of the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from airflow_provider_dtaas.testing.sqlserver import catalog, cdc, change_tracking
from airflow_provider_dtaas.testing.sqlserver.ddl import quote
from airflow_provider_dtaas.testing.sqlserver.sysviews import CDC

_BEFORE = "__dtaas_cdc_before"
_CHANGES = "__dtaas_cdc_changes"

Instance = tuple[str, list[tuple[int, str]]]  # capture instance, its captured (column id, name)s


@dataclass(frozen=True)
class Targets:
    """What follows a table's changes: its capture instances and its change tracking."""

    instances: list[Instance] = field(default_factory=list)
    tracking: change_tracking.Tracked | None = None

    def __bool__(self) -> bool:
        return bool(self.instances) or self.tracking is not None


def _changed(column_id: int) -> str:
    """The flag column of the compared changes: whether an update changed the column."""
    return quote(f"__$changed_{column_id}")


def _join(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


class Capture:
    """One session's capture: the before image of the statement running, the change tables and tracked
    tables its open transaction wrote to (whose new rows get the transaction's LSN or version at commit)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._pending: set[str] = set()
        self._tracked: set[int] = set()
        self._seqval = 0  # change rows of the open transaction so far

    def targets(self, table: catalog.TableDefinition | None) -> Targets:
        if table is None or table.object_id is None:
            return Targets()
        rows = self._con.execute(
            f"SELECT t.capture_instance, c.column_id, c.column_name FROM {CDC}.change_tables t "
            f"JOIN {CDC}.captured_columns c USING (object_id) WHERE t.source_object_id = ? "
            "ORDER BY t.capture_instance, c.column_ordinal",
            [table.object_id],
        ).fetchall()
        found: dict[str, list[tuple[int, str]]] = {}
        for instance, column_id, name in rows:
            found.setdefault(instance, []).append((column_id, name))
        return Targets(list(found.items()), change_tracking.tracked(self._con, table))

    def before(self, table: catalog.TableDefinition) -> None:
        key = self._key(table)
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_BEFORE}")
        self._con.execute(f"CREATE TEMP TABLE {_BEFORE} AS SELECT {key}, * FROM {self._source(table)}")

    def after(self, table: catalog.TableDefinition, targets: Targets) -> None:
        """Turn the differences since ``before`` into change rows of every capture instance and into the
        table's tracked changes."""
        key = self._key(table)
        keys = self._key_names(table)
        on = _join(keys, "b", "a")
        ids = table.column_ids()
        columns = [(ids[c.name.lower()], quote(c.name)) for c in table.columns]
        flags = ", ".join(f"b.{c} IS DISTINCT FROM a.{c} AS {_changed(i)}" for i, c in columns)
        no_flags = ", ".join(f"false AS {_changed(i)}" for i, _ in columns)
        order = ", ".join(keys)
        b_cols = ", ".join(f"b.{c}" for _, c in columns)
        a_cols = ", ".join(f"a.{c}" for _, c in columns)
        after = f"(SELECT {key}, * FROM {self._source(table)})"
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_CHANGES}")
        self._con.execute(
            f"""CREATE TEMP TABLE {_CHANGES} AS
            WITH updated AS (SELECT b.*, {flags} FROM {_BEFORE} b JOIN {after} a ON {on}
                             WHERE ({b_cols}) IS DISTINCT FROM ({a_cols})),
            updated_after AS (SELECT a.*, {", ".join(f"u.{_changed(i)}" for i, _ in columns)}
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
            present = {column_id: name for column_id, name in columns}
            for instance, captured in targets.instances:
                self._write(instance, captured, present)
                self._pending.add(instance)
            self._seqval += int(count)
            if targets.tracking is not None:
                change_tracking.record(self._con, table, targets.tracking, f"temp.{_CHANGES}")
                self._tracked.add(targets.tracking.object_id)
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_CHANGES}")
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_BEFORE}")

    def _write(self, instance: str, captured: list[tuple[int, str]], present: dict[int, str]) -> None:
        """Change rows of one capture instance; ``present`` are the table's columns (quoted) by id."""
        size = (max(column_id for column_id, _ in captured) + 7) // 8
        every = sum(1 << (column_id - 1) for column_id, _ in captured).to_bytes(size, "big").hex()
        parts = []
        for byte in reversed(range(size)):
            bits = [
                f"CASE WHEN {_changed(column_id)} THEN {1 << (column_id - 1 - 8 * byte)} ELSE 0 END"
                for column_id, _ in captured
                if 8 * byte < column_id <= 8 * byte + 8 and column_id in present
            ]
            parts.append(f"unhex(lpad(to_hex(CAST({' + '.join(bits) or '0'} AS BIGINT)), 2, '0'))")
        mask = f"CASE WHEN op IN (1, 2) THEN unhex('{every}') ELSE {' || '.join(parts)} END"
        seqval = (
            f"unhex('{cdc.LSN_VLF:08x}' || lpad(to_hex(CAST({self._seqval} + \"__$n\" AS BIGINT)), 12, '0'))"
        )
        names = ", ".join(quote(name) for _, name in captured)
        values = ", ".join(present.get(column_id, "NULL") for column_id, _ in captured)
        self._con.execute(
            f'INSERT INTO {cdc.change_table(instance)} ({", ".join(cdc.META)}, {names}, "__$command_id") '
            f'SELECT NULL, NULL, {seqval}, op, {mask}, {values}, 1 FROM {_CHANGES} ORDER BY "__$n", op'
        )

    def commit(self) -> None:
        """Give the open transaction's change rows their LSN and version (before the DuckDB COMMIT)."""
        if self._pending:
            lsn = cdc.next_lsn(self._con)
            for instance in sorted(self._pending):
                change_table = cdc.change_table(instance)
                self._con.execute(
                    f'UPDATE {change_table} SET "__$start_lsn" = ? WHERE "__$start_lsn" IS NULL', [lsn]
                )
            cdc.record_commit(self._con, lsn)
        change_tracking.commit(self._con, self._tracked)
        self.end()

    def end(self) -> None:
        """After COMMIT or ROLLBACK: nothing pending."""
        self._pending.clear()
        self._tracked.clear()
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
