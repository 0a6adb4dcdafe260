"""OpenLineage datasets of a table load, built from its plan and connection endpoints. No server: the
operator tests read Airflow connections from ``AIRFLOW_CONN_*`` variables, as a worker would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_dtaas.core.plan import TablePlan, plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.core.typemap import SourceColumn, map_column
from airflow_provider_dtaas.lineage import (
    Endpoints,
    LineageDataset,
    Loaded,
    database_namespace,
    destination_datasets,
    operator_lineage,
    s3_name,
    snowflake_namespace,
    source_dataset,
    static_prefix,
)

SPEC = """\
name: sales
source: {conn_id: src, database: sales_db}
destinations:
  s3: {conn_id: lake, bucket: raw-bucket, prefix: "sales/${yyyy}/"}
  snowflake: {conn_id: wh, database: DTAAS, schema: SALES}
tables: [dbo.orders]
"""
S3_ONLY = SPEC.replace("  snowflake: {conn_id: wh, database: DTAAS, schema: SALES}\n", "").replace(
    '"sales/${yyyy}/"', "sales/"
)
ENDPOINTS = Endpoints(
    source="mssql://sql.example.com:1433", source_database="sales_db", snowflake="snowflake://acme-prod"
)
COLUMNS = (
    map_column(SourceColumn("order_id", "int", 1, nullable=False)),
    map_column(SourceColumn("amount", "decimal", 2, precision=18, scale=2)),
    map_column(SourceColumn("note", "nvarchar", 3, max_length=200)),
)


def plan_of(text: str) -> TablePlan:
    (plan,) = plan_tables(parse_spec(text, display_name="sales.yaml"))
    return plan


@pytest.mark.parametrize(
    ("conn_type", "host", "port", "expected"),
    [
        ("mssql", "sql.example.com", None, "mssql://sql.example.com:1433"),
        ("mssql", "127.0.0.1", 36033, "mssql://127.0.0.1:36033"),
        ("postgres", "pg.example.com", None, "postgres://pg.example.com:5432"),
        ("postgresql", "pg.example.com", 6432, "postgres://pg.example.com:6432"),
    ],
    ids=["mssql-default-port", "mssql-port", "postgres-default-port", "postgresql-alias"],
)
def test_a_source_namespace_is_scheme_host_and_port(
    conn_type: str, host: str, port: int | None, expected: str
) -> None:
    assert database_namespace(conn_type, host, port) == expected


@pytest.mark.parametrize(
    ("account", "region", "expected"),
    [
        ("acme-prod", None, "snowflake://acme-prod"),  # organization-account: as it is
        ("xy12345", None, "snowflake://xy12345.us-west-1.aws"),  # a bare locator: AWS us-west-1
        ("xy12345", "eu-central-1", "snowflake://xy12345.eu-central-1.aws"),
        ("XY12345.eu-central-1.aws", None, "snowflake://xy12345.eu-central-1.aws"),
    ],
    ids=["org-account", "locator", "locator-and-region", "full-locator"],
)
def test_a_snowflake_namespace_is_the_account_as_the_snowflake_provider_names_it(
    account: str, region: str | None, expected: str
) -> None:
    assert snowflake_namespace(account, region) == expected


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("sales/dbo/orders/", "sales/dbo/orders"),
        ("sales/${yyyy}/dbo/", "sales"),
        ("sales/dt=${yyyy}-${mm}/", "sales"),
        ("${env}/orders/", "/"),
    ],
    ids=["plain", "dated-folder", "dated-name", "reference-first"],
)
def test_an_s3_dataset_is_named_by_the_prefix_up_to_its_first_reference(prefix: str, name: str) -> None:
    assert s3_name(static_prefix(prefix)) == name


def test_the_source_dataset_is_database_schema_table_with_declared_types() -> None:
    dataset = source_dataset(plan_of(SPEC), ENDPOINTS, COLUMNS)
    assert (dataset.namespace, dataset.name) == ("mssql://sql.example.com:1433", "sales_db.dbo.orders")
    assert dataset.fields == (("order_id", "int"), ("amount", "decimal(18,2)"), ("note", "nvarchar(200)"))


def test_before_a_commit_destinations_have_names_and_no_counts() -> None:
    s3, snowflake = destination_datasets(plan_of(SPEC), ENDPOINTS)
    assert (s3.namespace, s3.name) == ("s3://raw-bucket", "sales")
    assert (snowflake.namespace, snowflake.name) == ("snowflake://acme-prod", "DTAAS.SALES.ORDERS")
    assert (s3.rows, s3.bytes, s3.fields) == (None, None, ())


def test_after_a_commit_destinations_carry_schemas_and_what_was_written() -> None:
    loaded = Loaded(
        columns=COLUMNS,
        rows=1200,
        written={"s3": {"bytes": 4096, "files": 2}, "snowflake": {"bytes": 3000, "files": 1}},
        s3_prefix="sales/2025/dbo/orders/",
    )
    s3, snowflake = destination_datasets(plan_of(SPEC), ENDPOINTS, loaded=loaded)
    assert s3 == LineageDataset(
        namespace="s3://raw-bucket",
        name="sales/2025/dbo/orders",
        fields=(("order_id", "int32"), ("amount", "decimal128(18, 2)"), ("note", "string")),
        rows=1200,
        bytes=4096,
        files=2,
    )
    assert snowflake.fields == (
        ("ORDER_ID", "NUMBER(10,0)"),
        ("AMOUNT", "NUMBER(18,2)"),
        ("NOTE", "VARCHAR(200)"),
    )
    assert (snowflake.rows, snowflake.bytes, snowflake.files) == (1200, 3000, 1)


def test_a_destination_a_committed_run_wrote_nothing_to_counts_zero() -> None:
    (s3, _snowflake) = destination_datasets(plan_of(SPEC), ENDPOINTS, loaded=Loaded(rows=0, written={}))
    assert (s3.rows, s3.bytes, s3.files) == (0, 0, 0)


def test_without_a_snowflake_account_only_s3_is_named() -> None:
    endpoints = Endpoints(source="mssql://h:1433", source_database="sales_db")
    assert [d.namespace for d in destination_datasets(plan_of(SPEC), endpoints)] == ["s3://raw-bucket"]
    assert [d.name for d in destination_datasets(plan_of(S3_ONLY), ENDPOINTS)] == ["sales/dbo/orders"]


def _event_json(lineage: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return {
        "inputs": [json.loads(Serde.to_json(d)) for d in lineage.inputs],
        "outputs": [json.loads(Serde.to_json(d)) for d in lineage.outputs],
    }


def test_operator_lineage_has_schema_and_output_statistics_facets() -> None:
    source = LineageDataset("mssql://h:1433", "db.dbo.t", fields=(("id", "int"),))
    target = LineageDataset("s3://b", "p", fields=(("id", "int32"),), rows=5, bytes=100, files=1)
    event = _event_json(operator_lineage([source], [target]))
    (read,) = event["inputs"]
    assert [(f["name"], f["type"]) for f in read["facets"]["schema"]["fields"]] == [("id", "int")]
    (written,) = event["outputs"]
    assert (written["namespace"], written["name"]) == ("s3://b", "p")
    statistics = written["outputFacets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["size"], statistics["fileCount"]) == (5, 100, 1)


# --- the operators' lineage methods, with connections from AIRFLOW_CONN_* (no server is reached) ---

SECRET = "s3cr3t-never-in-lineage"


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> None:
    conns = {
        "src": {
            "conn_type": "mssql",
            "host": "sql.example.com",
            "port": 14330,
            "login": "reader",
            "password": SECRET,
            "schema": "other_db",
        },
        "wh": {
            "conn_type": "snowflake",
            "login": "loader",
            "password": SECRET,
            "extra": {"account": "xy12345", "region": "eu-central-1", "private_key_content": SECRET},
        },
    }
    for conn_id, body in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))


def _operator(kind: str, **extra: Any) -> Any:
    from airflow.sdk import DAG

    from airflow_provider_dtaas.transfers import full_load

    common: dict[str, Any] = {
        "spec_name": "sales",
        "table_plan": plan_of(SPEC).to_dict(),
        "mssql_conn_id": "src",
        "source_database": "sales_db",
    }
    with DAG("dtaas_sales", schedule=None):
        return getattr(full_load, kind)(task_id="t", **common, **extra)


@pytest.mark.usefixtures("connections")
def test_a_full_load_starts_with_its_source_and_destinations_and_no_secret() -> None:
    lineage = _operator("SqlServerFullLoadOperator").get_openlineage_facets_on_start()
    event = _event_json(lineage)
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        ("mssql://sql.example.com:14330", "sales_db.dbo.orders")  # the spec's database wins
    ]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        ("s3://raw-bucket", "sales"),
        ("snowflake://xy12345.eu-central-1.aws", "DTAAS.SALES.ORDERS"),
    ]
    assert SECRET not in json.dumps(event)
    assert "reader" not in json.dumps(event)


@pytest.mark.usefixtures("connections")
def test_the_openlineage_provider_extracts_the_operators_datasets() -> None:
    from airflow.providers.openlineage.extractors.base import DefaultExtractor
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    operator = _operator("SqlServerFullLoadOperator")
    assert ExtractorManager().get_extractor_class(operator) is DefaultExtractor
    started = DefaultExtractor(operator).extract()
    assert started is not None
    assert [d.name for d in started.inputs] == ["sales_db.dbo.orders"]
    assert [d.namespace for d in started.outputs] == [
        "s3://raw-bucket",
        "snowflake://xy12345.eu-central-1.aws",
    ]


@pytest.mark.usefixtures("connections")
def test_the_plan_task_names_only_the_table_it_reads() -> None:
    lineage = _operator("SqlServerPlanChunksOperator").get_openlineage_facets_on_start()
    assert [d.name for d in lineage.inputs] == ["sales_db.dbo.orders"]
    assert lineage.outputs == []


@pytest.mark.usefixtures("connections")
def test_a_skipped_table_completes_without_datasets() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    operator = _operator("SqlServerFullLoadOperator")
    with pytest.raises(AirflowSkipException, match="not in this run's 'tables' parameter"):
        operator._start({"params": {"tables": ["dbo.customers"]}})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert (lineage.inputs, lineage.outputs) == ([], [])


def test_the_local_stack_appends_its_lineage_events_to_a_file_of_its_own() -> None:
    from devstack.airflow_stack import airflow_env
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    secrets = {"fernet_key": "f", "api_secret_key": "a", "jwt_secret": "j"}
    transport = json.loads(airflow_env(cfg, secrets)["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport == {"type": "file", "log_file_path": str(cfg.lineage_events), "append": True}
    assert cfg.lineage_events.parent == cfg.logs_dir
