"""The operator that applies one table's changes (modes cdc and full_load_and_cdc)."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_dtaas import stats
from airflow_provider_dtaas.core.run_params import RESNAPSHOT_PARAM, requested_tables, wanted
from airflow_provider_dtaas.lineage import Loaded
from airflow_provider_dtaas.transfers.cdc import TableChanges
from airflow_provider_dtaas.transfers.cdc_start import cdc_source
from airflow_provider_dtaas.transfers.full_load import TableTask
from airflow_provider_dtaas.transfers.table_load import rendered_prefix, run_date


class SqlServerApplyChangesOperator(TableTask):
    """Apply the changes committed since the table's saved CDC position, window by window, to its
    S3 and Snowflake destinations, then advance the position (see
    :mod:`airflow_provider_dtaas.transfers.cdc`). Runs after the table's snapshot task, which
    either loaded the table or was skipped because its changes continue. In mode incremental it is
    the table's only task (``load_increment``): it upserts the rows whose watermark grew.

    Takes the parameters of the table-load operators (spec, table plan, connections). Its lineage
    names the source table and the destinations; its COMPLETE event counts the changes it applied
    and the bytes and files it wrote, over all windows.
    """

    ui_color = "#d4efdf"

    def execute(self, context: Any) -> dict[str, Any]:
        plan, load, state, execution_id = self._start(context)
        # a snapshot earlier in this run recorded its rows: the changes add to them
        state.begin_table(
            execution_id=execution_id,
            source_table=plan.source_name,
            attempt=int(context["ti"].try_number),
            keep=True,
        )
        started = time.monotonic()
        run_id = context["run_id"]
        try:
            progress = self._progress(plan, state, execution_id, context)
            changes = TableChanges(
                plan,
                dag_id=self.dag_id,
                run_id=run_id,
                source=cdc_source(load.source, plan.source_name),
                state=state,
                log=self.table_log(plan),
                run_date=run_date(context),
                s3_target=rendered_prefix(plan, run_id, context) if plan.s3 is not None else None,
                reread=wanted(
                    plan.source_name, requested_tables(context.get("params"), RESNAPSHOT_PARAM) or set()
                ),
                progress=progress,
            )
            try:
                totals = changes.apply()
            finally:  # the changes a window applied stand even when a later window fails
                progress.close()
                self._record_schema_changes(plan, state, execution_id, _by_destination(changes))
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        stats.cdc_lag(self.dag_id, plan.source_name, totals["lag_seconds"])
        self._loaded = Loaded(
            columns=tuple(changes.columns),
            rows=int(totals["changes"]),
            written=changes.written,
            s3_prefix=changes.s3_target.table_prefix if changes.s3_target is not None else None,
        )
        destinations = {f"{name} changes": d for name, d in totals["destinations"].items()}
        result = self._finished(
            plan,
            state,
            execution_id,
            int(totals["changes"]),
            destinations,
            time.monotonic() - started,
            accumulate=True,
        )
        result.update(
            {k: totals[k] for k in ("windows", "inserted", "updated", "deleted", "lag_seconds", "position")}
        )
        return result


def _by_destination(changes: TableChanges) -> dict[str, Any]:
    """The windows' schema changes in the form the table-load operators record them."""
    found: dict[str, Any] = {}
    for changed in changes.schema_changes:
        entry = found.setdefault(changed["destination"], {"target": changed["target"], "changes": []})
        entry["changes"] += changed["changes"]
    return {"schema_changes": found}
