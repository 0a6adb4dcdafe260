"""EXEC of the system procedures the double emulates: ``sys.sp_cdc_enable_db``,
``sys.sp_cdc_enable_table``, ``sys.sp_cdc_disable_table`` and ``sys.sp_cdc_cleanup_change_table``.
Enabling sets the catalog flags (``sys.databases.is_cdc_enabled``, ``sys.tables.is_tracked_by_cdc``),
records the capture instance in ``cdc.change_tables`` and ``cdc.captured_columns`` and creates its change
table ``cdc.<instance>_CT``, which ``capture`` fills as the table changes; disabling removes them again.
Cleanup removes change rows below a low water mark and raises the instance's min LSN, as retention would.

``sys.sp_dtaas_change_tracking_cleanup`` is the double's own (SQL Server has no such procedure): it
stands in for change tracking's retention cleanup in tests.

Any other system procedure is refused as not supported; any other name does not exist (2812).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import catalog, cdc, change_tracking, options
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, CDC

ENABLE_TABLE_PARAMETERS = (
    "source_schema", "source_name", "role_name", "capture_instance", "supports_net_changes", "index_name",
    "captured_column_list", "filegroup_name", "allow_partition_switch",
)  # fmt: skip
CLEANUP_PARAMETERS = ("capture_instance", "low_water_mark", "threshold")
DISABLE_TABLE_PARAMETERS = ("source_schema", "source_name", "capture_instance")
CHANGE_TRACKING_CLEANUP_PARAMETERS = ("table_name", "min_valid_version")


@dataclass(frozen=True)
class Call:
    """An EXEC: the procedure's name (without ``sys.``) and its arguments by parameter name."""

    procedure: str
    arguments: dict[str, object]


def _value(node: exp.Expr) -> object:
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.National) or (isinstance(node, exp.Literal) and node.is_string):
        return node.name
    if isinstance(node, exp.Literal):
        return int(node.name) if node.name.lstrip("-").isdigit() else node.name
    if isinstance(node, exp.HexString):
        return bytes.fromhex(node.name.zfill(len(node.name) + len(node.name) % 2))
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -int(node.this.name)
    raise not_supported(f"EXEC argument {node.sql('tsql')}")


def parse_call(statement: exp.Execute, positional: tuple[str, ...] = ()) -> Call:
    """Arguments given as ``@name = value`` or by position (named by ``positional``)."""
    procedure = statement.this
    name = procedure.name if isinstance(procedure, exp.Table) else procedure.sql("tsql")
    arguments: dict[str, object] = {}
    for position, argument in enumerate(statement.expressions):
        if isinstance(argument, exp.EQ) and isinstance(argument.this, exp.Parameter):
            arguments[argument.this.name.lower()] = _value(argument.expression)
        elif position < len(positional):
            arguments[positional[position]] = _value(argument)
        else:
            raise SqlServerError(8144, f"Procedure or function {name} has too many arguments specified.")
    return Call(name, arguments)


def _required(call: Call, name: str) -> object:
    if name not in call.arguments:
        raise SqlServerError(
            201,
            f"Procedure or function '{call.procedure}' expects parameter '@{name}', which was not supplied.",
            state=4,
        )
    return call.arguments[name]


def enable_db(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> None:
    options.set_option(con, "cdc_enabled", True)


def _net_changes_index(call: Call, table: catalog.TableDefinition) -> str | None:
    """The unique index that identifies rows for net changes (None when net changes are off)."""
    index_name = call.arguments.get("index_name")
    primary = table.primary_key()
    wanted = call.arguments.get("supports_net_changes")
    net_changes = bool(wanted) if wanted is not None else primary is not None or index_name is not None
    if index_name is not None:
        index = next((i for i in table.indexes if i.name.lower() == str(index_name).lower()), None)
        if index is None:
            raise SqlServerError(
                22928,
                f"Index name '{index_name}' is not an index for table '{table.qualified}'. "
                "Specify a valid index name for the table.",
            )
        if not index.unique:
            raise SqlServerError(
                22929,
                f"Index '{index_name}' must be either a primary key or a unique index for table "
                f"'{table.qualified}'. Specify an index that meets at least one of these requirements.",
            )
        return index.name
    if net_changes and primary is None:
        raise SqlServerError(
            22939,
            "The parameter @supports_net_changes is set to 1, but the source table does not have a primary "
            "key defined and no alternate unique index has been specified.",
        )
    return primary.name if net_changes and primary is not None else None


def _check_capture_instance(
    con: duckdb.DuckDBPyConnection, instance: str, table: catalog.TableDefinition
) -> None:
    """22926 for a capture instance name in use, 22962 for a table with two capture instances already."""
    taken, per_table = con.execute(
        f"SELECT count(*) FILTER (WHERE lower(capture_instance) = lower(?)), "
        f"count(*) FILTER (WHERE source_object_id = ?) FROM {CDC}.change_tables",
        [instance, table.object_id],
    ).fetchall()[0]
    if taken:
        raise SqlServerError(
            22926,
            f"Could not create a capture instance because the capture instance name '{instance}' already "
            "exists in the current database. Specify an explicit unique name for the parameter "
            "@capture_instance.",
        )
    if per_table >= 2:
        raise SqlServerError(
            22962,
            f"Two capture instances already exist for source table '{table.qualified}'. A table can have at "
            "most two capture instances. If the current tracking options are not appropriate, disable change "
            "tracking for the obsolete instance by using sys.sp_cdc_disable_table and retry the operation.",
        )


def _source_table(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> catalog.TableDefinition:
    """The table named by @source_schema and @source_name: 22901 when CDC is off for the database, 22931
    for a table that does not exist."""
    if not options.cdc_enabled(con):
        raise SqlServerError(
            22901,
            f"The database '{database}' is not enabled for Change Data Capture. Ensure that the correct "
            "database context is set and retry the operation. To report on the databases enabled for Change "
            "Data Capture, query the is_cdc_enabled column in the sys.databases catalog view.",
        )
    schema, name = str(_required(call, "source_schema")), str(_required(call, "source_name"))
    table = catalog.lookup(con, schema, name)
    if table is None or table.object_id is None:
        raise SqlServerError(
            22931,
            f"Source table '{schema}.{name}' does not exist in the current database. Ensure that the correct "
            "database context is set. Specify a valid schema and table name for the database.",
        )
    return table


def enable_table(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> None:
    table = _source_table(con, database, call)
    role = _required(call, "role_name")
    instance = str(call.arguments.get("capture_instance") or f"{table.schema}_{table.name}")
    _check_capture_instance(con, instance, table)
    index_name = _net_changes_index(call, table)
    columns = cdc.captured_columns(table, call.arguments.get("captured_column_list"))
    ((change_table_id,),) = con.execute(f"SELECT nextval('{CATALOG}.object_ids')").fetchall()
    lsn = cdc.next_lsn(con)
    con.execute(
        f"INSERT INTO {CDC}.change_tables VALUES (?, 0, ?, ?, ?, NULL, ?, "
        "NULL, ?, ?, ?, current_localtimestamp(), ?)",
        [change_table_id, table.object_id, instance, lsn, index_name is not None, role, index_name,
         call.arguments.get("filegroup_name"), bool(call.arguments.get("allow_partition_switch", 1))],
    )  # fmt: skip
    cdc.create_change_table(con, int(change_table_id), instance, table, columns)
    cdc.record_commit(con, lsn)


def cleanup_change_table(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> None:
    instance = str(_required(call, "capture_instance"))
    mark = _required(call, "low_water_mark")
    if not isinstance(mark, bytes):
        raise not_supported("@low_water_mark other than a binary(10) literal")
    cdc.cleanup(con, instance, mark.rjust(cdc.LSN_SIZE, b"\0"))


def disable_table(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> None:
    table = _source_table(con, database, call)
    instance = _required(call, "capture_instance")
    if instance is None:
        raise cdc.unknown_instance("NULL")
    cdc.disable(con, table, str(instance))


def change_tracking_cleanup(con: duckdb.DuckDBPyConnection, database: str, call: Call) -> None:
    """``sys.sp_dtaas_change_tracking_cleanup @table_name, @min_valid_version``: NOT a SQL Server
    procedure. The double's stand-in for change tracking's retention cleanup, so tests can make a
    reader's last sync version fall below the table's min valid version."""
    written = str(_required(call, "table_name"))
    version = _required(call, "min_valid_version")
    if not isinstance(version, int):
        raise not_supported("@min_valid_version other than an integer literal")
    *schema, name = options.split_name(written)
    change_tracking.cleanup(con, schema[-1] if schema else "dbo", name, version)


PROCEDURES: dict[str, tuple[tuple[str, ...], Callable[[duckdb.DuckDBPyConnection, str, Call], None]]] = {
    "sp_cdc_enable_db": ((), enable_db),
    "sp_cdc_enable_table": (ENABLE_TABLE_PARAMETERS, enable_table),
    "sp_cdc_cleanup_change_table": (CLEANUP_PARAMETERS, cleanup_change_table),
    "sp_cdc_disable_table": (DISABLE_TABLE_PARAMETERS, disable_table),
    "sp_dtaas_change_tracking_cleanup": (CHANGE_TRACKING_CLEANUP_PARAMETERS, change_tracking_cleanup),
}


def run(con: duckdb.DuckDBPyConnection, database: str, statement: exp.Execute) -> None:
    procedure = statement.this
    name = procedure.name.lower() if isinstance(procedure, exp.Table) else ""
    schema = procedure.args.get("db") if isinstance(procedure, exp.Table) else None
    if name in PROCEDURES and (schema is None or schema.name.lower() == "sys"):
        positional, action = PROCEDURES[name]
        action(con, database, parse_call(statement, positional))
        return
    if name.startswith(("sp_", "xp_")) or (schema is not None and schema.name.lower() == "sys"):
        raise not_supported(f"The procedure '{procedure.sql('tsql')}'")
    raise SqlServerError(2812, f"Could not find stored procedure '{procedure.sql('tsql')}'.", state=62)
