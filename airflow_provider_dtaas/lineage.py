"""OpenLineage datasets of a table load: the source table it reads, the Snowflake table and S3 folder
it writes.

Names follow OpenLineage's naming conventions (https://openlineage.io/docs/spec/naming), so other
producers' events about the same tables join ours in a lineage graph:

=========== ===================================== =================================
dataset     namespace                             name
=========== ===================================== =================================
SQL Server  ``mssql://{host}:{port}``             ``{database}.{schema}.{table}``
PostgreSQL  ``postgres://{host}:{port}``          ``{database}.{schema}.{table}``
Snowflake   ``snowflake://{account}``             ``{DATABASE}.{SCHEMA}.{TABLE}``
S3          ``s3://{bucket}``                     the table's key prefix, e.g. ``sample/dbo/orders``
=========== ===================================== =================================

The account is normalised as the Snowflake provider's own lineage does it. Only host, port, database
and account come from the Airflow connections, never a login, password or key. Building datasets
is pure (:func:`source_dataset`, :func:`destination_datasets`); :func:`operator_lineage` turns them
into the ``OperatorLineage`` the OpenLineage provider expects from ``get_openlineage_facets_on_*``,
and :func:`connection_endpoints` reads the connections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_dtaas.core.plan import TablePlan
from airflow_provider_dtaas.core.typemap import MappedColumn

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

# source connection type -> (OpenLineage scheme, the server's default port)
SOURCE_SCHEMES: dict[str, tuple[str, int]] = {
    "mssql": ("mssql", 1433),
    "postgres": ("postgres", 5432),
    "postgresql": ("postgres", 5432),
}


@dataclass(frozen=True)
class LineageDataset:
    """One dataset of a lineage event; ``fields`` are (column, type); rows, bytes and files are what
    the task wrote to it (outputs, COMPLETE events only)."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    rows: int | None = None
    bytes: int | None = None
    files: int | None = None


@dataclass(frozen=True)
class Endpoints:
    """Where a table load reads and writes, as OpenLineage namespaces (no credentials)."""

    source: str
    source_database: str | None = None
    snowflake: str | None = None


@dataclass(frozen=True)
class Loaded:
    """What a table-load task read and wrote, for its COMPLETE event."""

    columns: tuple[MappedColumn, ...] = ()
    rows: int | None = None
    # per destination ("s3", "snowflake"): {"bytes": ..., "files": ...}; with rows None: not committed
    written: Mapping[str, Mapping[str, Any]] | None = None
    s3_prefix: str | None = None  # the S3 prefix with its ${...} references resolved


def database_namespace(conn_type: str, host: str | None, port: int | None) -> str:
    """``mssql://db.example.com:1433``: the source's scheme, host and port (the default when unset)."""
    scheme, default_port = SOURCE_SCHEMES.get(conn_type, (conn_type, 0))
    port = port or default_port
    return f"{scheme}://{host or 'localhost'}" + (f":{port}" if port else "")


def snowflake_namespace(account: str, region: str | None = None) -> str:
    """``snowflake://xy12345.eu-central-1.aws``: the account as the Snowflake provider names it."""
    from airflow.providers.snowflake.utils.openlineage import fix_account_name

    host = f"{account}.{region}" if region and region not in account else account
    return f"snowflake://{fix_account_name(host.lower())}"


def static_prefix(prefix: str) -> str:
    """The folders of an S3 prefix before its first run-time reference: ``raw/${yyyy}/x/`` -> ``raw/``."""
    head, marker, _rest = prefix.partition("${")
    return head if not marker else head[: head.rfind("/") + 1]


def s3_name(prefix: str) -> str:
    """An S3 dataset's name: the key prefix without its trailing slash (``/`` for the bucket root)."""
    return prefix.strip("/") or "/"


def source_dataset(
    plan: TablePlan, endpoints: Endpoints, columns: Sequence[MappedColumn] = ()
) -> LineageDataset:
    """The table read, with its columns' source types (as declared, e.g. ``decimal(18,2)``)."""
    database = f"{endpoints.source_database}." if endpoints.source_database else ""
    return LineageDataset(
        namespace=endpoints.source,
        name=f"{database}{plan.source_schema}.{plan.source_table}",
        fields=tuple((c.name, c.source.declaration()) for c in columns),
    )


def destination_datasets(
    plan: TablePlan,
    endpoints: Endpoints,
    *,
    loaded: Loaded | None = None,
) -> list[LineageDataset]:
    """The S3 folder and the Snowflake table written; with what was ``loaded`` (after a commit),
    their schemas and rows, bytes and files written."""
    loaded = loaded or Loaded()
    written = loaded.written or {}
    datasets: list[LineageDataset] = []
    if plan.s3 is not None:
        prefix = loaded.s3_prefix or static_prefix(plan.s3.table_prefix)
        datasets.append(
            _with_counts(
                LineageDataset(
                    namespace=f"s3://{plan.s3.bucket}",
                    name=s3_name(prefix),
                    fields=tuple((c.name, str(c.arrow_type)) for c in loaded.columns),
                ),
                loaded.rows,
                written.get("s3"),
            )
        )
    if plan.snowflake is not None and endpoints.snowflake is not None:
        target = plan.snowflake
        datasets.append(
            _with_counts(
                LineageDataset(
                    namespace=endpoints.snowflake,
                    name=f"{target.database}.{target.schema}.{target.table}",
                    fields=tuple((c.name.upper(), c.snowflake_type) for c in loaded.columns),
                ),
                loaded.rows,
                written.get("snowflake"),
            )
        )
    return datasets


def _with_counts(
    dataset: LineageDataset, rows: int | None, written: Mapping[str, Any] | None
) -> LineageDataset:
    """The counts of a committed load (``rows`` known); a destination it wrote nothing to: zeros."""
    if rows is None:
        return dataset
    written = written or {}
    return replace(
        dataset, rows=rows, bytes=int(written.get("bytes") or 0), files=int(written.get("files") or 0)
    )


def operator_lineage(
    inputs: Sequence[LineageDataset], outputs: Sequence[LineageDataset]
) -> OperatorLineage[Any, Any]:
    """The OpenLineage provider's ``OperatorLineage``: datasets with schema and output statistics facets."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    def facets(dataset: LineageDataset) -> dict[str, Any]:
        if not dataset.fields:
            return {}
        fields = [SchemaDatasetFacetFields(name=name, type=kind) for name, kind in dataset.fields]
        return {"schema": SchemaDatasetFacet(fields=fields)}

    def statistics(dataset: LineageDataset) -> dict[str, Any]:
        if dataset.rows is None and dataset.bytes is None:
            return {}
        counts = OutputStatisticsOutputDatasetFacet(
            rowCount=dataset.rows, size=dataset.bytes, fileCount=dataset.files
        )
        return {"outputStatistics": counts}

    return OperatorLineage(
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=facets(d)) for d in inputs],
        outputs=[
            OutputDataset(namespace=d.namespace, name=d.name, facets=facets(d), outputFacets=statistics(d))
            for d in outputs
        ],
    )


def connection_endpoints(
    source_conn_id: str, source_database: str | None, snowflake_conn_id: str | None
) -> Endpoints:
    """The namespaces of a table load's source and Snowflake account, from their Airflow connections."""
    from airflow.sdk import BaseHook

    source = BaseHook.get_connection(source_conn_id)
    snowflake = None
    if snowflake_conn_id is not None:
        extra = BaseHook.get_connection(snowflake_conn_id).extra_dejson
        account = extra.get("account") or extra.get("extra__snowflake__account")
        region = extra.get("region") or extra.get("extra__snowflake__region")
        snowflake = snowflake_namespace(str(account), region and str(region)) if account else None
    return Endpoints(
        source=database_namespace(str(source.conn_type), source.host, source.port),
        source_database=source_database or source.schema or None,
        snowflake=snowflake,
    )


def table_lineage(
    plan: TablePlan,
    source_conn_id: str,
    source_database: str | None,
    loaded: Loaded | None = None,
    outputs: bool = True,
) -> OperatorLineage[Any, Any]:
    """A table-load task's lineage: the source table and (``outputs``) its destinations, with what
    was ``loaded`` when the task has committed."""
    snowflake_conn_id = plan.snowflake.conn_id if plan.snowflake is not None else None
    endpoints = connection_endpoints(source_conn_id, source_database, snowflake_conn_id if outputs else None)
    columns = loaded.columns if loaded is not None else ()
    written = destination_datasets(plan, endpoints, loaded=loaded) if outputs else []
    return operator_lineage([source_dataset(plan, endpoints, columns)], written)
