"""The progress view's derived figures: throughput points, progress %, rows/s and ETA (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_dtaas.ui.queries import _table, throughput_series

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_throughput_adds_up_each_tables_latest_count_and_rates_between_points() -> None:
    samples = [("a", 0.0, 0), ("b", 0.5, 0), ("a", 1.0, 100), ("b", 2.0, 50), ("a", 3.0, 400)]
    points = throughput_series(samples, max_points=100)
    assert [(p["t"], p["rows"]) for p in points] == [(0.0, 0.0), (1.0, 100.0), (2.0, 150.0), (3.0, 450.0)]
    assert [p["rows_per_s"] for p in points] == [0.0, 100.0, 50.0, 300.0]


def test_a_long_run_is_merged_into_at_most_the_points_asked_for() -> None:
    samples = [("a", float(t), t * 10) for t in range(1000)]
    points = throughput_series(samples, max_points=50)
    assert len(points) <= 51
    assert points[-1]["rows"] == 9990.0
    assert all(p["rows_per_s"] >= 0 for p in points)


def _row(**values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "status": "running",
        "rows_processed": 250,
        "estimated_rows": 1000,
        "seconds": None,
        "started_at": NOW - timedelta(seconds=10),
        "attempt": 2,
        "destinations": {},
    }
    row.update(values)
    return row


def test_a_running_table_gets_progress_rate_and_eta_from_its_estimate() -> None:
    table = _table(_row(), NOW)
    assert (table["progress_pct"], table["rows_per_s"], table["eta_seconds"], table["retries"]) == (
        25.0,
        25.0,
        30.0,
        1,
    )


def test_progress_never_claims_done_before_the_commit_and_unknown_estimates_stay_unknown() -> None:
    assert _table(_row(rows_processed=5000), NOW)["progress_pct"] == 99.0
    assert _table(_row(estimated_rows=None), NOW)["progress_pct"] is None
    assert _table(_row(estimated_rows=None), NOW)["eta_seconds"] is None
    done = _table(_row(status="success", seconds=5.0, rows_processed=1000), NOW)
    assert (done["progress_pct"], done["rows_per_s"], done["eta_seconds"]) == (100.0, 200.0, None)
