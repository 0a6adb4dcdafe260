"""Run-time table discovery: the tables a spec's patterns select, as plans for a mapped load."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_dtaas.core.discovery import match_tables
from airflow_provider_dtaas.core.plan import collisions, plan_table
from airflow_provider_dtaas.core.run_params import requested_tables, wanted
from airflow_provider_dtaas.core.spec import TableSpec, TaskSpec
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook


class TableDiscoveryError(RuntimeError):
    """Discovered tables cannot be loaded as they are (e.g. two would land on one target)."""


class DiscoverTablesOperator(BaseOperator):
    """List the source's tables, keep those the spec's patterns select, return one plan each.

    The returned list feeds the ``discovered`` group's mapped ``full_load`` task; listed tables are
    never returned, so no table is loaded twice.

    :param spec: the task spec as a plain dictionary (``TaskSpec.model_dump``).
    :param mssql_conn_id: Airflow connection of the SQL Server source.
    :param source_database: database to read instead of the connection's own.
    """

    template_fields = ("source_database",)
    ui_color = "#eeeeee"

    def __init__(
        self, *, spec: dict[str, Any], mssql_conn_id: str, source_database: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.mssql_conn_id = mssql_conn_id
        self.source_database = source_database

    def execute(self, context: Any) -> list[dict[str, Any]]:
        spec = TaskSpec.model_validate(self.spec)
        assert spec.table_patterns is not None, "the builder only adds discovery for specs with patterns"
        hook = DtaasMsSqlHook(mssql_conn_id=self.mssql_conn_id, database=self.source_database)
        available = hook.list_tables()
        unusable = [f"{s}.{t}" for s, t in available if "." in s or "." in t]
        if unusable:
            self.log.warning("spec %s: skipping tables whose names contain '.': %s", spec.name, unusable)
        usable = [(s, t) for s, t in available if "." not in s and "." not in t]
        found = match_tables(usable, spec.table_patterns, listed={t.name for t in spec.tables})
        requested = requested_tables(context.get("params"))
        found = [(s, t) for s, t in found if wanted(f"{s}.{t}", requested)]
        listed = [plan_table(spec, table) for table in spec.tables]
        discovered = [plan_table(spec, TableSpec(name=f"{s}.{t}")) for s, t in found]
        problems = [
            message for position, message in collisions(listed + discovered) if position >= len(listed)
        ]
        if problems:
            raise TableDiscoveryError(
                f"spec {spec.name}: "
                + "; ".join(problems)
                + " (list such tables by name to give them a target)"
            )
        self.log.info(
            "spec %s: patterns select %d table(s): %s",
            spec.name,
            len(discovered),
            ", ".join(p.source_name for p in discovered) or "none",
        )
        return [plan.to_dict() for plan in discovered]
