"""Names that try to break out of their quotes travel as data, never as SQL.

A table and columns whose names hold brackets, quotes, semicolons, comment marks, spaces and
non-ASCII letters are created in the SQL Server double and loaded by the full-load operator into
S3 (moto) and Snowflake (fakesnow or a real account, ``snowflake_place``): every row arrives under
its exact column names, and the table a would-be injected ``DROP TABLE`` names still exists.

Stand-in gap: fakesnow 0.12 answers the quoted hostile names (``"WE]I'RD""; DROP ..."``) with an
HTTP 500 although they are valid Snowflake, so on fakesnow the load goes to S3 only; on a real account
(``DTAAS_TEST_SNOWFLAKE_CONN``) it goes to Snowflake too and every row is compared there. The loads
rely on the stand-in's ``REMOVE`` and ``QUERY_TAG`` shims (devstack/snowflake.py, tests only).
"""

from __future__ import annotations

import io
import json
import uuid
from types import SimpleNamespace

import pyarrow.parquet as pq
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table, quote_snowflake
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator
from tests.integration.snowflake_place import SnowflakePlace

BUCKET = "it-hostile-names"
COLUMNS = ["id", 'a"b', "c]d", "semi;colon", "ünï cødé", "x' OR '1'='1", "--dash"]


def test_hostile_table_and_column_names_load_exactly_and_execute_nothing(
    mssql_conn: str, s3_conn: str, state_conn: str, snowflake_place: SnowflakePlace
) -> None:
    token = uuid.uuid4().hex[:8]
    canary = f"canary_{token}"
    table = f"we]i'rd\"; DROP TABLE {canary}--ü{token}"  # no dot: a table name is one part
    source = MsSqlHook(mssql_conn_id=mssql_conn)
    source.run(f"CREATE TABLE {quote_mssql_table('dbo', canary)} (id int NOT NULL PRIMARY KEY)")
    columns = ", ".join(
        f"{quote_mssql(c)} {'int NOT NULL PRIMARY KEY' if c == 'id' else 'nvarchar(40) NULL'}"
        for c in COLUMNS
    )
    source.run(f"CREATE TABLE {quote_mssql_table('dbo', table)} ({columns})")
    rows = [
        (1, 'say "hi"', "]]", "; DROP TABLE x", "ü", "' OR 1=1 --", None),
        (2, None, "[x]", "a;b", "日本", "'", "/* */"),
        (3, "", "", "", "", "", ""),
    ]
    insert = (
        f"INSERT INTO {quote_mssql_table('dbo', table)} ({', '.join(quote_mssql(c) for c in COLUMNS)})"
        f" VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    for row in rows:
        source.run(insert, parameters=row)
    try:
        place = snowflake_place
        result = _load(table, s3_conn, state_conn, None if place.stand_in else place)
        assert result["rows"] == len(rows)
        assert _s3_rows(result, s3_conn) == rows
        if not place.stand_in:
            sql_columns = ", ".join(quote_snowflake(c.upper()) for c in COLUMNS)
            landed = place.records(f"SELECT {sql_columns} FROM {place.path(table.upper())} ORDER BY 1")
            assert [tuple(r) for r in landed] == rows
        # the canary the table's name tries to drop is still there
        assert source.get_first(f"SELECT COUNT(*) FROM {quote_mssql_table('dbo', canary)}") == (0,)
    finally:
        source.run(f"DROP TABLE {quote_mssql_table('dbo', table)}")
        source.run(f"DROP TABLE {quote_mssql_table('dbo', canary)}")


def _load(table: str, s3_conn: str, state_conn: str, place: SnowflakePlace | None) -> dict[str, object]:
    from airflow.sdk import DAG

    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name=BUCKET)
    snowflake = (
        ""
        if place is None
        else f"  snowflake: {{conn_id: {json.dumps(place.conn_id)}, database: {json.dumps(place.database)},"
        f" schema: {json.dumps(place.schema)}}}\n"
    )
    spec_text = (
        "name: it_hostile\nsource: {conn_id: it_mssql}\n"
        f"destinations:\n  s3: {{conn_id: it_s3, bucket: {BUCKET}, prefix: raw/}}\n{snowflake}"
        f"tables:\n  - name: {json.dumps('dbo.' + table)}\n"
    )
    spec = parse_spec(spec_text, display_name="hostile.yaml").model_copy(update={"state_conn_id": state_conn})
    (plan,) = plan_tables(spec)
    run_id = f"manual__{uuid.uuid4()}"
    state = DtaasStateHook(state_conn)
    state.migrate()
    state.begin_execution(
        spec_name=spec.name, dag_id="dtaas_it_hostile", run_id=run_id, mode="full_load", tables=1
    )
    with DAG("dtaas_it_hostile", schedule=None):
        operator = SqlServerFullLoadOperator(
            task_id="full_load",
            spec_name=spec.name,
            table_plan=plan.to_dict(),
            mssql_conn_id="it_mssql",
            state_conn_id=state_conn,
        )
    context = {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
    return dict(operator.execute(context))


def _s3_rows(result: dict[str, object], s3_conn: str) -> list[tuple[object, ...]]:
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    location = str(result["destinations"]["s3"]["location"])  # type: ignore[index]
    prefix = location.split("/", 3)[3]
    listed = json.loads(client.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    found: list[tuple[object, ...]] = []
    for entry in listed["files"]:
        data = pq.read_table(io.BytesIO(client.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()))
        assert data.column_names == COLUMNS
        found += [tuple(r[c] for c in COLUMNS) for r in data.to_pylist()]
    return sorted(found, key=lambda r: int(r[0]))  # type: ignore[call-overload]
