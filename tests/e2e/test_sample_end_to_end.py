"""The sample spec, triggered through the REST API on the Celery stack, lands every row intact."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devstack import services
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

SAMPLE_TABLES = ("dbo.customers", "dbo.products", "dbo.orders")
_EPOCH = dt.datetime(1970, 1, 1)


def _ns_from_text(text: str | None) -> int | None:
    """'2024-01-02 03:04:05.1234567' (SQL Server style 121) -> ns since the epoch, exactly."""
    if text is None:
        return None
    clock, _, fraction = text.partition(".")
    whole = dt.datetime.fromisoformat(clock)
    seconds = (whole - _EPOCH) // dt.timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def source_rows(schema: str, table: str) -> tuple[list[str], dict[str, str], dict[Any, tuple[Any, ...]]]:
    """The source table read independently of DTaaS: pymssql through MsSqlHook, keyed by the first column."""
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    hook = MsSqlHook(mssql_conn_id="dtaas_mssql")
    columns = hook.get_records(
        "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        parameters=(schema, table),
    )
    select = ", ".join(
        f"CONVERT(VARCHAR(40), [{name}], 121)" if data_type == "datetime2" else f"[{name}]"
        for name, data_type in columns
    )
    rows = hook.get_records(f"SELECT {select} FROM [{schema}].[{table}]")
    kinds = {name: data_type for name, data_type in columns}
    names = [name for name, _ in columns]
    normalised = {}
    for row in rows:
        values = []
        for name, value in zip(names, row, strict=True):
            if kinds[name] == "datetime2":
                value = _ns_from_text(value)
            elif kinds[name] == "uniqueidentifier" and value is not None:
                value = str(value).upper()
            elif kinds[name] == "bit" and value is not None:
                value = bool(value)
            values.append(value)
        normalised[values[0]] = tuple(values)
    return names, kinds, normalised


def _normalise_arrow(
    table: pa.Table,
    names: list[str],
    null_flags: dict[str, list[bool]] | None = None,
    kinds: dict[str, str] | None = None,
) -> dict[Any, tuple[Any, ...]]:
    columns = []
    for name in names:
        column = table.column(name)
        if kinds and kinds[name] == "datetime2" and pa.types.is_string(column.type):
            values = [_ns_from_text(v) for v in column.to_pylist()]  # datetime2(7) travels as exact text
        elif pa.types.is_timestamp(column.type):
            values = pc.cast(pc.cast(column, pa.timestamp("ns")), pa.int64()).to_pylist()
            if null_flags and name in null_flags:
                values = [None if is_null else v for v, is_null in zip(values, null_flags[name], strict=True)]
        else:
            values = column.to_pylist()
        columns.append(values)
    rows = [tuple(r) for r in zip(*columns, strict=True)]
    return {row[0]: row for row in rows}


def s3_rows(
    stack: Stack,
    run_id: str,
    schema: str,
    table: str,
    names: list[str],
    kinds: dict[str, str],
    base: str = "sample",
) -> dict[Any, tuple[Any, ...]]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id="dtaas_s3").get_conn()
    token = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in run_id).strip("_")
    prefix = f"{base}/{schema}/{table}/run={token}/"
    manifest = json.loads(
        client.get_object(Bucket="dtaas-demo", Key=prefix + "_manifest.json")["Body"].read()
    )
    parts = [
        pq.read_table(io.BytesIO(client.get_object(Bucket="dtaas-demo", Key=f["key"])["Body"].read()))
        for f in manifest["files"]
    ]
    combined = pa.concat_tables(parts)
    assert combined.num_rows == manifest["rows"]
    rows = _normalise_arrow(combined, names, kinds=kinds)
    assert len(rows) == combined.num_rows, f"{schema}.{table}: a key landed twice in S3"
    return rows


def snowflake_rows(table: str, names: list[str], timestamp_columns: list[str]) -> dict[Any, tuple[Any, ...]]:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    upper = [n.upper() for n in names]
    # fakesnow's server returns NULL timestamps as 1970-01-01, so NULL-ness is read as its own column
    flags = [f'"{c.upper()}" IS NULL AS "{c.upper()}__NULL"' for c in timestamp_columns]
    select = ", ".join([*(f'"{c}"' for c in upper), *flags])
    with SnowflakeHook(snowflake_conn_id="dtaas_snowflake").get_conn() as conn:
        cursor = conn.cursor()
        cursor.execute(f'SELECT {select} FROM "DTAAS"."SAMPLE"."{table.upper()}"')
        result = cursor.fetch_arrow_all()
    renamed = result.rename_columns([*names, *(f"{c}__NULL" for c in timestamp_columns)])
    null_flags = {c: renamed.column(f"{c}__NULL").to_pylist() for c in timestamp_columns}
    return _normalise_arrow(renamed, names, null_flags)


def _decimal_to_int_if_integral(rows: dict[Any, tuple[Any, ...]]) -> dict[Any, tuple[Any, ...]]:
    """Snowflake's NUMBER(p,0) arrives as Decimal; the source and Parquet carry ints."""
    from decimal import Decimal

    def fix(v: Any) -> Any:
        return (
            int(v)
            if isinstance(v, Decimal) and v == v.to_integral_value() and v.as_tuple().exponent == 0
            else v
        )

    return {fix(k): tuple(fix(v) for v in row) for k, row in rows.items()}


def test_sample_spec_loads_every_row_to_s3_and_snowflake_on_celery(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    client.wait_for_dag("dtaas_sample")
    run_id = client.trigger("dtaas_sample")
    assert client.wait_for_run("dtaas_sample", run_id, timeout=600) == "success"

    for qualified in SAMPLE_TABLES:
        schema, table = qualified.split(".")
        names, kinds, expected = source_rows(schema, table)
        assert expected, f"{qualified}: the sample table is empty"
        timestamp_columns = [n for n in names if kinds[n] in ("datetime2", "datetime", "smalldatetime")]
        landed_s3 = s3_rows(e2e_stack, run_id, schema, table, names, kinds)
        assert len(landed_s3) == len(expected), f"{qualified}: S3 row count"
        assert landed_s3 == expected, f"{qualified}: S3 rows differ from the source"
        landed_sf = _decimal_to_int_if_integral(snowflake_rows(table, names, timestamp_columns))
        assert len(landed_sf) == len(expected), f"{qualified}: Snowflake row count"
        # fakesnow stores timestamps in microseconds (rounded from typed values, cut from text such as
        # datetime2(7)); Snowflake keeps 100 ns, and S3 is compared exactly above
        rounded = [names.index(c) for c in timestamp_columns]
        assert _within_rounding(landed_sf, expected, rounded), f"{qualified}: Snowflake rows differ"

    assert_ran_on_celery(e2e_stack, "dtaas_sample", run_id)


def _within_rounding(
    landed: dict[Any, tuple[Any, ...]], expected: dict[Any, tuple[Any, ...]], rounded: list[int]
) -> bool:
    if landed.keys() != expected.keys():
        return False
    for key, row in expected.items():
        for index, (want, got) in enumerate(zip(row, landed[key], strict=True)):
            if index in rounded and want is not None and got is not None:
                if abs(want - got) >= 1_000:
                    return False
            elif want != got:
                return False
    return True


def assert_ran_on_celery(stack: Stack, dag_id: str, run_id: str) -> None:
    """Every task instance was handed to Celery and its Celery task succeeded on the worker."""
    rows = services.query(
        stack.cfg,
        stack.cfg.airflow_db,
        "SELECT ti.task_id, ti.state, m.status FROM task_instance ti"
        " LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id"
        " WHERE ti.dag_id = %s AND ti.run_id = %s",
        (dag_id, run_id),
    )
    assert len(rows) == 5
    assert all(state == "success" and celery == "SUCCESS" for _, state, celery in rows), rows
