"""SQLAlchemy's mssql dialect reflects tables of the SQL Server double as it does SQL Server's (the path
dlt's ``sql_database`` source takes): sys.types, sys.default_constraints, sys.identity_columns,
sys.extended_properties, OBJECT_ID of a constraint and OBJECTPROPERTY, the foreign key query."""

from __future__ import annotations

from collections.abc import Iterator

import pymssql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from tests.standins.conftest import Connect

_DDL = """CREATE TABLE dbo.reflected (
    id bigint NOT NULL PRIMARY KEY, qty int NULL,
    flag smallint NOT NULL CONSTRAINT DF_reflected_flag DEFAULT 0, amount decimal(18,2) NULL,
    rate decimal(9,4) NULL, code varchar(20) NULL, label nvarchar(200) NULL,
    city varchar(40) NULL, created_at datetime2(3) NULL DEFAULT GETDATE(), changed_at datetimeoffset(3) NULL,
    note nvarchar(max) NULL, seq int IDENTITY(100, 5) NOT NULL)"""


@pytest.fixture
def engine(
    empty_sqlserver: SqlServerDouble, mssql_password: str, connect_empty: Connect
) -> Iterator[sa.Engine]:
    connection = connect_empty(autocommit=True)
    connection.cursor().execute(_DDL)
    engine = sa.create_engine(
        f"mssql+pymssql://sa:{mssql_password}@{empty_sqlserver.host}:{empty_sqlserver.port}/dtaas_sample"
    )
    yield engine
    engine.dispose()


def _described(column: dict[str, object]) -> tuple[object, ...]:
    kind = column["type"]
    return (
        column["name"],
        type(kind).__name__,
        getattr(kind, "precision", None),
        getattr(kind, "scale", None),
        getattr(kind, "length", None),
        column["nullable"],
        column["default"],
    )


def test_columns_keep_type_precision_scale_length_nullability_and_defaults(engine: sa.Engine) -> None:
    columns = sa.inspect(engine).get_columns("reflected", schema="dbo")

    assert [_described(c) for c in columns] == [
        ("id", "BIGINT", None, None, None, False, None),
        ("qty", "INTEGER", None, None, None, True, None),
        ("flag", "SMALLINT", None, None, None, False, "((0))"),
        ("amount", "DECIMAL", 18, 2, None, True, None),
        ("rate", "DECIMAL", 9, 4, None, True, None),
        ("code", "VARCHAR", None, None, 20, True, None),
        ("label", "NVARCHAR", None, None, 200, True, None),
        ("city", "VARCHAR", None, None, 40, True, None),
        ("created_at", "DATETIME2", None, None, None, True, "(getdate())"),
        ("changed_at", "DATETIMEOFFSET", None, None, None, True, None),
        ("note", "NVARCHAR", None, None, None, True, None),
        ("seq", "INTEGER", None, None, None, False, None),
    ]
    assert columns[5]["type"].collation == "SQL_Latin1_General_CP1_CI_AS"  # type: ignore[attr-defined]
    assert columns[-1]["identity"] == {"start": 100, "increment": 5}
    assert columns[-1]["autoincrement"] is True


def test_primary_key_indexes_and_foreign_keys(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)

    assert inspector.get_pk_constraint("reflected", schema="dbo") == {
        "constrained_columns": ["id"],
        "name": "PK_reflected",
        "dialect_options": {"mssql_clustered": 1},
    }
    assert inspector.get_foreign_keys("reflected", schema="dbo") == []
    assert inspector.get_indexes("reflected", schema="dbo") == []
    assert inspector.has_table("reflected", schema="dbo")
    assert not inspector.has_table("absent", schema="dbo")


def test_a_reflected_table_selects_the_rows(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO dbo.reflected (id, qty, amount) VALUES (1, 7, 12.50)")
    table = sa.Table("reflected", sa.MetaData(), autoload_with=engine, schema="dbo")

    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.qty, table.c.flag, table.c.seq)).all()

    assert [tuple(row) for row in rows] == [(1, 7, 0, 100)]
    assert isinstance(table.c.amount.type, mssql.DECIMAL)


def test_sys_types_lists_sql_servers_system_types(connect_empty: Connect) -> None:
    cursor = connect_empty().cursor()
    cursor.execute(
        "SELECT name, system_type_id, user_type_id, max_length, precision, scale, is_nullable "
        "FROM sys.types WHERE name IN ('decimal', 'nvarchar', 'datetime2', 'datetimeoffset', 'sysname', "
        "'geography') ORDER BY user_type_id"
    )
    assert cursor.fetchall() == [
        ("datetime2", 42, 42, 8, 27, 7, True),
        ("datetimeoffset", 43, 43, 10, 34, 7, True),
        ("decimal", 106, 106, 17, 38, 38, True),
        ("geography", 240, 130, -1, 0, 0, True),
        ("nvarchar", 231, 231, 8000, 0, 0, True),
        ("sysname", 231, 256, 256, 0, 0, False),
    ]
    cursor.execute("SELECT count(*) FROM sys.types")
    assert cursor.fetchone() == (34,)


def test_constraints_are_objects_of_their_own(engine: sa.Engine, connect_empty: Connect) -> None:
    cursor = connect_empty().cursor()
    cursor.execute(
        "SELECT o.name, o.type, o.parent_object_id - OBJECT_ID('dbo.reflected'), "
        "OBJECTPROPERTY(o.object_id, 'CnstIsClustKey'), OBJECT_ID('dbo.' + o.name, 'U'), o.object_id "
        "FROM sys.objects o WHERE o.parent_object_id <> 0 ORDER BY o.type DESC, o.name"
    )
    rows = cursor.fetchall()
    assert [row[:4] for row in rows] == [
        ("PK_reflected", "PK", 0, 1),
        (rows[1][0], "D", 0, None),
        ("DF_reflected_flag", "D", 0, None),
    ]
    assert rows[1][0] == f"DF__reflected__creat__{rows[1][5]:08X}"
    assert all(row[4] is None for row in rows)  # not user tables
    cursor.execute(
        "SELECT c.name, d.definition, d.is_system_named FROM sys.columns c "
        "JOIN sys.default_constraints d ON d.object_id = c.default_object_id ORDER BY c.column_id"
    )
    assert cursor.fetchall() == [("flag", "((0))", False), ("created_at", "(getdate())", True)]


def test_a_cte_then_select_is_one_statement(connect_empty: Connect) -> None:
    cursor = connect_empty().cursor()
    cursor.execute(
        "WITH a AS (SELECT 1 AS x), b AS (SELECT 2 AS x) SELECT x FROM a UNION SELECT x FROM b ORDER BY x"
    )
    assert cursor.fetchall() == [(1,), (2,)]


def test_listing_extended_properties_finds_none(connect_empty: Connect) -> None:
    cursor: pymssql.Cursor = connect_empty().cursor()
    cursor.execute(
        "SELECT 1 FROM fn_listextendedproperty(default, default, default, default, default, default, default)"
    )
    assert cursor.fetchall() == []
