"""Run bookkeeping: open a DTaaS execution before the tables load, close it after."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_dtaas import stats
from airflow_provider_dtaas.core.run_params import RunParamError, check_requested, requested_tables, wanted
from airflow_provider_dtaas.core.schema_drift import describe_change
from airflow_provider_dtaas.hooks.state import DtaasStateHook


class BeginRunOperator(BaseOperator):
    """Migrate the state store if needed and record the run as started.

    :param spec_name: name of the task spec.
    :param mode: replication mode of the run.
    :param tables: the tables the spec lists (``schema.table``).
    :param has_patterns: whether the spec also finds tables by pattern at run time.
    :param state_conn_id: Airflow connection of the DTaaS state store.
    """

    ui_color = "#eeeeee"

    def __init__(
        self,
        *,
        spec_name: str,
        mode: str,
        tables: list[str],
        has_patterns: bool = False,
        state_conn_id: str = "dtaas_state",
        spec_fingerprint: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.mode = mode
        self.tables = tables
        self.has_patterns = has_patterns
        self.state_conn_id = state_conn_id
        self.spec_fingerprint = spec_fingerprint

    def execute(self, context: Any) -> int:
        try:
            requested = requested_tables(context.get("params"))
            check_requested(requested, self.tables, spec=self.spec_name, has_patterns=self.has_patterns)
        except RunParamError as err:  # a wrong trigger does not get better by retrying
            raise AirflowFailException(str(err)) from err
        if requested:
            self.log.info("spec %s: this run loads only %s", self.spec_name, ", ".join(sorted(requested)))
        state = DtaasStateHook(self.state_conn_id)
        state.migrate()
        run_id = context["run_id"]
        previous = state.previous_spec_fingerprint(self.dag_id, run_id)
        execution_id = state.begin_execution(
            spec_name=self.spec_name,
            dag_id=self.dag_id,
            run_id=run_id,
            mode=self.mode,
            tables=len([t for t in self.tables if wanted(t, requested)]),
            spec_fingerprint=self.spec_fingerprint,
        )
        self._audit(state, context, requested, previous)
        self.log.info(
            "spec %s: run %s recorded as execution %d", self.spec_name, context["run_id"], execution_id
        )
        return execution_id

    def _audit(
        self, state: DtaasStateHook, context: Any, requested: set[str] | None, previous: str | None
    ) -> None:
        """Who started the run (a user, or the schedule), and whether the spec changed since the last run."""
        dag_run = context.get("dag_run")
        kind = getattr(dag_run, "run_type", None)
        run_type = str(getattr(kind, "value", kind) or "unknown")  # an enum on a worker
        actor = getattr(dag_run, "triggering_user_name", None) or run_type
        detail: dict[str, Any] = {"run_type": run_type, "tables": sorted(requested) if requested else "all"}
        state.record_audit(
            actor=actor, action="trigger", dag_id=self.dag_id, run_id=context["run_id"], detail=detail
        )
        if previous and self.spec_fingerprint and previous != self.spec_fingerprint:
            self.log.info("spec %s changed since the previous run", self.spec_name)
            state.record_audit(
                actor=actor,
                action="spec_changed",
                dag_id=self.dag_id,
                run_id=context["run_id"],
                detail={"from": previous, "to": self.spec_fingerprint},
            )


class EndRunOperator(BaseOperator):
    """Close the run from its tables' outcomes; fail, naming the tables, if any did not load.

    The summary (logged, and returned as XCom) lists each table's outcome and its schema changes,
    applied and refused.

    :param spec_name: name of the task spec.
    :param tables: the source tables (``schema.table``) the run was to load.
    :param discovery_task_id: the task that found more tables at run time, if the spec has patterns.
    :param state_conn_id: Airflow connection of the DTaaS state store.
    """

    ui_color = "#eeeeee"

    def __init__(
        self,
        *,
        spec_name: str,
        tables: list[str],
        discovery_task_id: str | None = None,
        state_conn_id: str = "dtaas_state",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)  # its verdict depends only on the tables; retrying changes nothing
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.tables = tables
        self.discovery_task_id = discovery_task_id
        self.state_conn_id = state_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        state = DtaasStateHook(self.state_conn_id)
        execution_id = state.execution_id(self.dag_id, context["run_id"])
        requested = requested_tables(context.get("params"))
        expected = [t for t in self.tables if wanted(t, requested)]
        if self.discovery_task_id:
            discovered = context["ti"].xcom_pull(task_ids=self.discovery_task_id)
            if discovered is None:
                expected.append("(tables matching the spec's patterns: discovery did not finish)")
            else:
                expected += [f"{p['source_schema']}.{p['source_table']}" for p in discovered]
        summary = state.finish_execution(execution_id, expected)
        stats.run_finished(self.dag_id, summary["status"], summary["seconds"])
        for table in summary["tables"]:
            self.log.info(
                "table %s: %s, %d rows, %s s",
                table["source_table"],
                table["status"],
                table["rows_processed"],
                table["seconds"],
            )
            for change in table.get("schema_changes", []):
                self.log.info(
                    "table %s: schema change on %s %s: %s",
                    table["source_table"],
                    change["target"],
                    change["status"],
                    describe_change(change),
                )
        schema_changes = {
            t["source_table"]: t["schema_changes"] for t in summary["tables"] if t.get("schema_changes")
        }
        if summary["failed_tables"]:
            errors = "; ".join(
                f"{t['source_table']}: {t['error'] or 'did not finish'}"
                for t in summary["tables"]
                if t["status"] != "success"
            )
            raise AirflowException(
                f"spec {self.spec_name}: {len(summary['failed_tables'])} table(s) failed: {errors}"
            )
        return {
            "status": summary["status"],
            "tables": len(summary["tables"]),
            "schema_changes": schema_changes,
        }
