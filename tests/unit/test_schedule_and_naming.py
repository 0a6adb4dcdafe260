from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_dtaas.builder.dag_factory import build_dag
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec
from tests.unit.test_spec_loader import VALID


def _dag(schedule_yaml: str):  # type: ignore[no-untyped-def]
    spec = parse_spec(VALID + schedule_yaml, display_name="s.yaml")
    return build_dag(spec, spec_file="s.yaml")


@pytest.mark.parametrize(
    ("schedule_yaml", "schedule", "timetable"),
    [
        pytest.param("", None, "NullTimetable", id="manual-by-default"),
        pytest.param("schedule: manual\n", None, "NullTimetable", id="manual"),
        pytest.param("schedule: '*/15 * * * *'\n", "*/15 * * * *", "CronTriggerTimetable", id="cron"),
        pytest.param("schedule: '@daily'\n", "@daily", "CronTriggerTimetable", id="preset"),
        pytest.param("schedule: continuous\n", "@continuous", "ContinuousTimetable", id="continuous"),
        pytest.param(
            "schedule: {interval_seconds: 300}\n",
            timedelta(seconds=300),
            "DeltaTriggerTimetable",
            id="interval",
        ),
    ],
)
def test_schedule_kinds(schedule_yaml: str, schedule: object, timetable: str) -> None:
    dag = _dag(schedule_yaml)
    assert dag.schedule == schedule
    assert type(dag.timetable).__name__ in (timetable, timetable.replace("Trigger", "DataInterval"))


def test_asset_triggered() -> None:
    dag = _dag("schedule:\n  assets: ['dtaas://sales/orders']\n")
    assert "dtaas://sales/orders" in str(dag.timetable.asset_condition)


@pytest.mark.parametrize(
    ("schedule_yaml", "message"),
    [
        pytest.param(
            "schedule: 'every day'\n", r"s.yaml:15: schedule.cron: not a cron expression", id="bad-cron"
        ),
        pytest.param(
            "schedule: {cron: '@daily', continuous: true}\n",
            r"s.yaml:15: schedule: give exactly one",
            id="two-kinds",
        ),
        pytest.param(
            "schedule: {interval_seconds: 0}\n",
            r"schedule.interval_seconds: Input should be greater",
            id="zero-interval",
        ),
    ],
)
def test_bad_schedules(schedule_yaml: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(VALID + schedule_yaml, display_name="s.yaml")


def test_snowflake_table_naming_policy() -> None:
    text = VALID.replace(
        "    schema: RAW\n", "    schema: RAW\n    table_case: lower\n    table_prefix: src_\n"
    )
    plans = plan_tables(parse_spec(text, display_name="s.yaml"))
    assert [p.snowflake.table for p in plans if p.snowflake] == ["src_orders", "src_customers"]
