"""CDC end to end below Airflow's scheduler: the snapshot and apply-changes operators of a table run
against the SQL Server double (pymssql), fakesnow (SnowflakeHook over HTTPS), moto (S3Hook over HTTP)
and the PostgreSQL state store. After every scenario the Snowflake table equals the source table, and
so does the S3 snapshot with the change windows after it replayed onto it.

The Airflow task context is the one thing mocked (a plain dict with the keys the operators read).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dtaas.core.lsn import Lsn
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.cdc_operator import SqlServerApplyChangesOperator
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator
from airflow_provider_dtaas.ui import queries

BUCKET = "it-cdc"
DAG_ID = "dtaas_it_cdc"


@dataclass
class CdcCase:
    """Tables under CDC in the double, a spec over them, and the servers it writes to."""

    mssql: DtaasMsSqlHook
    conn_id: str
    s3: DtaasS3Hook
    snowflake_conn: str
    state: DtaasStateHook
    schema: str  # the Snowflake schema of this case
    tables: list[str] = field(default_factory=list)

    def create(
        self,
        definition: str = "id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL",
        *,
        tracking: bool | None = False,
    ) -> str:
        """A new table with CDC enabled, with Change Tracking (``tracking``), or neither (None)."""
        name = f"cdc_{uuid.uuid4().hex[:8]}"
        self.mssql.run(f"CREATE TABLE dbo.{name} ({definition})")
        self.tables.append(name)
        if tracking is None:
            return name
        if tracking:
            (enabled,) = self.mssql.get_first(
                "SELECT COUNT(*) FROM sys.change_tracking_databases WHERE database_id = DB_ID()"
            )
            if not enabled:
                self.mssql.run(
                    "ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS)",
                    autocommit=True,  # not inside a transaction
                )
            self.mssql.run(f"ALTER TABLE dbo.{name} ENABLE CHANGE_TRACKING")
            return name
        self.mssql.run("EXEC sys.sp_cdc_enable_db")
        self.mssql.run(
            f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{name}', "
            "@role_name = NULL"
        )
        return name

    def change(self, statement: str, *, captured: bool = True) -> None:
        """Run a change and wait until CDC captured it: at once in the double; a real SQL Server's
        capture job reads the log every few seconds (Change Tracking, ``captured`` False, is synchronous)."""
        (before,) = self.mssql.get_first("SELECT sys.fn_cdc_get_max_lsn()")
        self.mssql.run(statement)
        if not captured:
            return
        deadline = time.monotonic() + 60
        while self.mssql.get_first("SELECT sys.fn_cdc_get_max_lsn()")[0] == before:
            assert time.monotonic() < deadline, f"CDC did not capture: {statement}"
            time.sleep(0.5)

    def spec(
        self,
        *,
        mode: str = "full_load_and_cdc",
        cdc: str = "",
        tables: list[str] | None = None,
        snowflake: bool = True,
    ) -> str:
        listed = "\n".join(f"  - dbo.{t}" for t in tables or self.tables)
        return (
            f"name: it_cdc\nmode: {mode}\n{cdc}"
            f"source: {{conn_id: {self.conn_id}}}\n"
            "destinations:\n"
            f"  s3: {{conn_id: it_s3, bucket: {BUCKET}, prefix: {self.schema.lower()}/}}\n"
            + (
                f"  snowflake: {{conn_id: {self.snowflake_conn}, database: ITDB, schema: {self.schema}}}\n"
                if snowflake
                else ""
            )
            + f"tables:\n{listed}\n"
        )

    def run(self, spec_text: str, **params: Any) -> dict[str, dict[str, Any]]:
        """One DAG run: per table, the snapshot task (maybe skipped) then apply_changes; returns the
        apply results by table."""
        spec = parse_spec(spec_text, display_name="it_cdc.yaml").model_copy(
            update={"state_conn_id": "it_state"}
        )
        run_id = f"manual__{uuid.uuid4()}"
        self.state.begin_execution(
            spec_name=spec.name, dag_id=DAG_ID, run_id=run_id, mode=spec.mode, tables=len(spec.tables)
        )
        context = {
            "run_id": run_id,
            "ti": SimpleNamespace(try_number=1),
            "params": params,
            "logical_date": None,
        }
        results = {}
        for plan in plan_tables(spec):
            snapshot, apply = operators(plan.to_dict(), self.conn_id)
            if spec.mode != "incremental":  # whose DAG has no snapshot task
                with contextlib.suppress(AirflowSkipException):  # its changes continue
                    snapshot.execute(dict(context))
            results[plan.source_name] = apply.execute(dict(context))
        return results

    def source(self, table: str) -> list[tuple[Any, ...]]:
        return [
            tuple(r) for r in self.mssql.get_records(f"SELECT id, item, qty FROM dbo.{table} ORDER BY id")
        ]

    def snowflake(self, table: str, *, include_deleted: bool = False) -> list[tuple[Any, ...]]:
        where = "" if include_deleted else ' WHERE NOT COALESCE("_DTAAS_DELETED", FALSE)'
        rows = DtaasSnowflakeHook(snowflake_conn_id=self.snowflake_conn).get_records(
            f'SELECT "ID", "ITEM", "QTY" FROM ITDB.{self.schema}."{table.upper()}"{where} ORDER BY "ID"'
        )
        return [tuple(r) for r in rows]

    def s3_replayed(self, table: str, *, from_snapshot: bool = True) -> list[tuple[Any, ...]]:
        """The latest snapshot (or nothing), with every change window after its resume position applied
        in LSN order (the last change per key wins; before-images skipped), as a reader of the bucket
        would."""
        prefix = f"{self.schema.lower()}/dbo/{table}/"
        resume, state = Lsn(0), {}
        if from_snapshot:
            pointer = self._json(f"{prefix}_latest.json")
            snapshot = self._json(pointer["manifest"])
            resume = Lsn.parse(snapshot["cdc_resume_after"]["lsn"])
            state = {r["id"]: (r["id"], r["item"], r["qty"]) for r in self._rows(snapshot)}
        windows = [
            self._json(key) for key in self._keys(f"{prefix}changes/") if key.endswith("_manifest.json")
        ]
        for window in sorted(windows, key=lambda w: w["lsn_range"]["from"]):
            if Lsn.parse(window["lsn_range"]["to"]) <= resume:
                continue
            for change in sorted(self._rows(window), key=lambda r: (r["_dtaas_lsn"], r["_dtaas_seqval"])):
                if change["_dtaas_op"] == "D":
                    state.pop(change["id"], None)
                elif change["_dtaas_op"] in ("I", "U"):
                    state[change["id"]] = (change["id"], change["item"], change["qty"])
        return [state[k] for k in sorted(state)]

    def _json(self, key: str) -> dict[str, Any]:
        body = self.s3.get_conn().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return dict(json.loads(body))

    def _keys(self, prefix: str) -> list[str]:
        return list(self.s3.list_keys(bucket_name=BUCKET, prefix=prefix))

    def _rows(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for entry in manifest["files"]:
            data = self.s3.get_conn().get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
            rows += pq.read_table(io.BytesIO(data)).to_pylist()
        return rows

    def assert_in_sync(self, table: str, *, replay_from_snapshot: bool = True) -> None:
        expected = self.source(table)
        assert self.snowflake(table) == expected
        assert self.s3_replayed(table, from_snapshot=replay_from_snapshot) == expected


def operators(
    plan: dict[str, Any], conn_id: str
) -> tuple[SqlServerFullLoadOperator, SqlServerApplyChangesOperator]:
    from airflow.sdk import DAG

    common: dict[str, Any] = {
        "spec_name": "it_cdc",
        "table_plan": plan,
        "mssql_conn_id": conn_id,
        "state_conn_id": "it_state",
    }
    with DAG(DAG_ID, schedule=None):
        return (
            SqlServerFullLoadOperator(task_id="snapshot", **common),
            SqlServerApplyChangesOperator(task_id="apply_changes", **common),
        )


@pytest.fixture
def case(source_conn: str, s3_conn: str, snowflake_conn: str, state_conn: str) -> Iterator[CdcCase]:
    """One case per source: the double, and a real SQL Server with Agent when DTAAS_TEST_MSSQL_CONN
    names one."""
    s3 = DtaasS3Hook(aws_conn_id=s3_conn)
    if not s3.check_for_bucket(BUCKET):
        s3.create_bucket(bucket_name=BUCKET)
    state = DtaasStateHook(state_conn)
    state.migrate()
    found = CdcCase(
        mssql=DtaasMsSqlHook(mssql_conn_id=source_conn),
        conn_id=source_conn,
        s3=s3,
        snowflake_conn=snowflake_conn,
        state=state,
        schema=f"CDC_{uuid.uuid4().hex[:8].upper()}",
    )
    yield found
    for table in found.tables:
        found.mssql.run(f"DROP TABLE dbo.{table}")


def history(case: CdcCase, table: str) -> list[dict[str, Any]]:
    return case.state.cdc_history(dag_id=DAG_ID, source_table=f"dbo.{table}")


def test_snapshot_then_every_kind_of_change_arrives_exactly_once(case: CdcCase) -> None:
    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2), (3, N'plum', 3)")
    first = case.run(case.spec())[f"dbo.{table}"]
    assert first["rows"] == 0  # the snapshot loaded them; nothing since
    assert first["windows"] == 0
    case.assert_in_sync(table)

    case.change(f"INSERT INTO dbo.{table} VALUES (4, N'fig', NULL)")
    case.change(f"UPDATE dbo.{table} SET qty = 10 WHERE id = 1")
    case.change(f"DELETE FROM dbo.{table} WHERE id = 2")
    case.change(f"UPDATE dbo.{table} SET id = 30 WHERE id = 3")  # a primary-key update
    for qty in (5, 6, 7):  # many changes to one key in one window: the last one wins
        case.change(f"UPDATE dbo.{table} SET qty = {qty} WHERE id = 4")
    second = case.run(case.spec())[f"dbo.{table}"]
    assert (
        second["rows"] == 8
    )  # change rows: insert, update, delete, key update as delete + insert, 3 updates
    # the MERGE applies the last change per key: ids 4 and 30 inserted, 1 updated, 2 and 3 deleted
    assert (second["inserted"], second["updated"], second["deleted"]) == (2, 1, 2)
    case.assert_in_sync(table)
    # the progress view shows the window: its changes, as a chunk of their own, and its LSN range
    view = queries.run_view(case.state, DAG_ID, None)
    assert view is not None
    (shown,) = [t for t in view["tables"] if t["table"] == f"dbo.{table}"]
    assert (shown["status"], shown["rows_processed"], shown["chunks"], shown["chunks_done"]) == (
        "success",
        8,
        1,
        1,
    )
    assert shown["lsn_from"] is not None
    assert shown["lsn_to"] > shown["lsn_from"]

    # caught up: the next run reads nothing and changes nothing
    third = case.run(case.spec())[f"dbo.{table}"]
    assert third["windows"] == 0
    case.assert_in_sync(table)
    kinds = [h["kind"] for h in history(case, table)]
    assert kinds == ["snapshot", "changes"]
    window = history(case, table)[1]
    assert window["committed_at"] is not None
    assert window["changes"] == 8
    assert window["lag_seconds"] is not None
    assert window["lag_seconds"] >= 0


def test_changes_made_during_the_snapshot_are_replayed_idempotently(
    case: CdcCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_dtaas.transfers import full_load

    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2), (3, N'plum', 3)")
    copy_chunks = full_load.TableLoad.copy_chunks

    def copy_after_changes(self: Any, *args: Any, **kwargs: Any) -> Any:
        # the snapshot's start LSN is recorded; these changes land before it reads a row
        case.change(f"UPDATE dbo.{table} SET qty = 20 WHERE id = 2")
        case.change(f"DELETE FROM dbo.{table} WHERE id = 3")
        case.change(f"INSERT INTO dbo.{table} VALUES (4, N'fig', 4)")
        monkeypatch.setattr(full_load.TableLoad, "copy_chunks", copy_chunks)
        return copy_chunks(self, *args, **kwargs)

    monkeypatch.setattr(full_load.TableLoad, "copy_chunks", copy_after_changes)
    result = case.run(case.spec())[f"dbo.{table}"]
    # the snapshot already holds the changes; the window after its start applies them again
    assert result["windows"] == 1
    assert result["rows"] == 3
    case.assert_in_sync(table)


def test_a_transaction_spanning_tables_reaches_both(case: CdcCase) -> None:
    orders, lines = case.create(), case.create()
    case.run(case.spec())
    case.change(
        f"BEGIN TRANSACTION; INSERT INTO dbo.{orders} VALUES (1, N'order', 1); "
        f"INSERT INTO dbo.{lines} VALUES (1, N'line', 5), (2, N'line', 6); COMMIT TRANSACTION"
    )
    results = case.run(case.spec())
    assert results[f"dbo.{orders}"]["rows"] == 1
    assert results[f"dbo.{lines}"]["rows"] == 2
    case.assert_in_sync(orders)
    case.assert_in_sync(lines)
    (order_window,) = [h for h in history(case, orders) if h["kind"] == "changes"]
    (line_window,) = [h for h in history(case, lines) if h["kind"] == "changes"]
    assert order_window["to_lsn"] == line_window["to_lsn"]  # one transaction, one LSN


def test_a_replayed_window_changes_nothing(case: CdcCase) -> None:
    table = case.create()
    case.run(case.spec())
    before = case.state.position(dag_id=DAG_ID, source_table=f"dbo.{table}")
    assert before is not None
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2)")
    case.change(f"UPDATE dbo.{table} SET qty = 9 WHERE id = 1")
    case.run(case.spec())
    applied = case.snowflake(table, include_deleted=True)
    # the run died after the destinations committed and before the position moved: it is read again
    case.state.reset_position(dag_id=DAG_ID, source_table=f"dbo.{table}", position=before, run_id="rewind")
    replay = case.run(case.spec())[f"dbo.{table}"]
    assert replay["windows"] == 1
    assert replay["rows"] == 3
    assert (replay["inserted"], replay["updated"], replay["deleted"]) == (0, 0, 0)
    assert case.snowflake(table, include_deleted=True) == applied
    case.assert_in_sync(table)  # the S3 window folder was found committed and left as it was
    windows = [h for h in history(case, table) if h["kind"] == "changes"]
    assert len({(w["from_lsn"], w["to_lsn"]) for w in windows}) == 1


def _clean_up_changes(case: CdcCase, table: str) -> None:
    """Advance the capture instance's minimum LSN past changes DTaaS has not read (the CDC cleanup job)."""
    case.change(f"INSERT INTO dbo.{table} VALUES (100, N'lost', 1)")
    case.change(f"INSERT INTO dbo.{table} VALUES (101, N'kept', 1)")
    (mark,) = case.mssql.get_first("SELECT sys.fn_cdc_get_max_lsn()")
    case.mssql.run(
        f"EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_{table}', "
        f"@low_water_mark = 0x{bytes(mark).hex()}"
    )


def test_a_retention_gap_fails_the_table_and_says_what_to_do(case: CdcCase) -> None:
    table = case.create()
    case.run(case.spec())
    saved = case.state.position(dag_id=DAG_ID, source_table=f"dbo.{table}")
    assert saved is not None
    _clean_up_changes(case, table)
    with pytest.raises(AirflowFailException) as failure:
        case.run(case.spec())
    message = str(failure.value)
    assert f"table dbo.{table}: the saved CDC position {saved.lsn} is older than" in message
    assert f"capture instance dbo_{table} still holds" in message
    assert "Resnapshot the table (gap_policy: resnapshot" in message
    # nothing moved: the position still waits, and it is detected again on the next run
    assert case.state.position(dag_id=DAG_ID, source_table=f"dbo.{table}") == saved
    with pytest.raises(AirflowFailException, match="older than the oldest change"):
        case.run(case.spec())


def test_a_retention_gap_with_resnapshot_loads_the_table_again_then_resumes(case: CdcCase) -> None:
    table = case.create()
    spec = case.spec(cdc="cdc: {gap_policy: resnapshot}\n")
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    case.run(spec)
    _clean_up_changes(case, table)
    case.run(spec)
    case.assert_in_sync(table)
    assert [h["kind"] for h in history(case, table)] == ["snapshot", "resnapshot"]
    case.change(f"UPDATE dbo.{table} SET qty = 2 WHERE id = 101")
    assert case.run(spec)[f"dbo.{table}"]["rows"] == 1
    case.assert_in_sync(table)


def test_a_run_can_ask_for_a_resnapshot(case: CdcCase) -> None:
    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    case.run(case.spec())
    case.run(case.spec(), resnapshot=[f"dbo.{table}"])
    assert [h["kind"] for h in history(case, table)] == ["snapshot", "resnapshot"]
    case.assert_in_sync(table)


def test_mode_cdc_from_now_skips_older_changes_and_soft_deletes(case: CdcCase) -> None:
    table = case.create()
    spec = case.spec(mode="cdc", cdc="cdc: {start_from: now, delete_mode: soft}\n")
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'old', 1)")
    first = case.run(spec)[f"dbo.{table}"]
    assert first["windows"] == 0
    case.change(f"INSERT INTO dbo.{table} VALUES (2, N'new', 2), (3, N'gone', 3)")
    case.change(f"DELETE FROM dbo.{table} WHERE id = 3")
    case.run(spec)
    assert case.snowflake(table) == [(2, "new", 2)]  # row 1 predates the start
    # 3 was inserted and deleted within one window: it never reaches the target
    assert case.snowflake(table, include_deleted=True) == [(2, "new", 2)]
    case.change(f"DELETE FROM dbo.{table} WHERE id = 2")
    case.run(spec)
    assert case.snowflake(table) == []
    assert case.snowflake(table, include_deleted=True) == [(2, "new", 2)]  # kept, marked deleted
    assert history(case, table)[0]["kind"] == "start"


def test_a_table_without_cdc_gets_the_commands_that_enable_it(case: CdcCase) -> None:
    name = f"plain_{uuid.uuid4().hex[:8]}"
    case.mssql.run(
        f"CREATE TABLE dbo.{name} (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int)"
    )
    try:
        with pytest.raises(AirflowFailException) as failure:
            case.run(case.spec(tables=[name]))
    finally:
        case.mssql.run(f"DROP TABLE dbo.{name}")
    message = str(failure.value)
    assert f"table dbo.{name}: change data capture is not enabled for it" in message
    assert f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{name}'" in message


def test_a_new_capture_instance_after_ddl_is_followed_and_its_column_evolves_the_target(
    case: CdcCase,
) -> None:
    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    case.run(case.spec())
    # DDL, then the DBA's second capture instance with the new column; both capture for a while
    case.mssql.run(f"ALTER TABLE dbo.{table} ADD note nvarchar(30) NULL")
    case.change(f"INSERT INTO dbo.{table} VALUES (2, N'pear', 2, N'before v2')")
    case.mssql.run(
        f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', "
        f"@role_name = NULL, @capture_instance = N'dbo_{table}_v2'"
    )
    case.change(f"INSERT INTO dbo.{table} VALUES (3, N'plum', 3, N'after v2')")
    case.change(f"UPDATE dbo.{table} SET note = N'noted' WHERE id = 1")
    result = case.run(case.spec())[f"dbo.{table}"]
    assert result["windows"] == 2  # the old instance up to the new one's start, then the new one
    case.assert_in_sync(table)
    notes = DtaasSnowflakeHook(snowflake_conn_id=case.snowflake_conn).get_records(
        f'SELECT "ID", "NOTE" FROM ITDB.{case.schema}."{table.upper()}" ORDER BY "ID"'
    )
    # id 2 changed only while the old instance (without the column) was read
    assert [tuple(r) for r in notes] == [(1, "noted"), (2, None), (3, "after v2")]
    events = history(case, table)
    switch = next(h for h in events if h["kind"] == "switch")
    assert f"to dbo_{table}_v2" in switch["detail"]
    assert "note" in switch["detail"]
    position = case.state.position(dag_id=DAG_ID, source_table=f"dbo.{table}")
    assert position is not None
    assert position.capture_instance == f"dbo_{table}_v2"
    # the new column went through handle_schema_drift (evolve) and is in the schema history
    drift = case.state.get_records(
        "SELECT destination, change, column_name FROM dtaas.schema_history WHERE source_table = %s",
        parameters=(f"dbo.{table}",),
    )
    assert [tuple(r) for r in drift] == [("snowflake", "added", "NOTE")]
    # the old instance can go now: nothing is lost
    case.mssql.run(
        f"EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'{table}', "
        f"@capture_instance = N'dbo_{table}'"
    )
    case.change(f"DELETE FROM dbo.{table} WHERE id = 2")
    case.run(case.spec())
    case.assert_in_sync(table)


def test_a_dropped_capture_instance_is_a_clear_error(case: CdcCase) -> None:
    table = case.create()
    case.run(case.spec())
    case.mssql.run(
        f"EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'{table}', "
        f"@capture_instance = N'dbo_{table}'"
    )
    with pytest.raises(
        AirflowFailException, match=f"table dbo.{table}: change data capture is not enabled for it"
    ):
        case.run(case.spec())


async def first(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_the_trigger_fires_only_when_a_table_has_changes_after_its_position(case: CdcCase) -> None:
    import asyncio

    from airflow_provider_dtaas.triggers.cdc import MsSqlCdcChangesTrigger

    table = case.create()
    waiting = MsSqlCdcChangesTrigger(
        mssql_conn_id=case.conn_id,
        source_database=None,
        state_conn_id="it_state",
        dag_id=DAG_ID,
        tables=[f"dbo.{table}", "dbo.not_there_yet"],
        poll_interval=0.2,
        timeout=1.0,
    )
    # a table without a position is due once it is tracked (its first run snapshots it); a missing
    # or untracked one is not, so a watcher never starts failing runs while it is prepared
    assert asyncio.run(first(waiting)) == {"status": "changes", "tables": [f"dbo.{table}"]}
    case.run(case.spec())
    trigger = MsSqlCdcChangesTrigger(
        mssql_conn_id=case.conn_id,
        source_database=None,
        state_conn_id="it_state",
        dag_id=DAG_ID,
        tables=[f"dbo.{table}"],
        poll_interval=0.2,
        timeout=1.0,
    )

    def first_event() -> Any:
        return first(trigger)

    assert asyncio.run(first_event()) == {"status": "timeout", "waited_seconds": 1.0}
    plain = f"plain_{uuid.uuid4().hex[:8]}"  # exists, not tracked: still nothing to wait for
    case.mssql.run(f"CREATE TABLE dbo.{plain} (id int NOT NULL PRIMARY KEY)")
    untracked = MsSqlCdcChangesTrigger(**{**trigger.serialize()[1], "tables": [f"dbo.{plain}"]})
    try:
        assert asyncio.run(first(untracked))["status"] == "timeout"
    finally:
        case.mssql.run(f"DROP TABLE dbo.{plain}")
    other = case.create()  # changes elsewhere move the max LSN, not this table's changes
    case.change(f"INSERT INTO dbo.{other} VALUES (1, N'elsewhere', 1)")
    assert asyncio.run(first_event())["status"] == "timeout"
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    assert asyncio.run(first_event()) == {"status": "changes", "tables": [f"dbo.{table}"]}
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_dtaas.triggers.cdc.MsSqlCdcChangesTrigger"
    assert MsSqlCdcChangesTrigger(**kwargs).serialize() == (classpath, kwargs)


def _rows_sql(table: str, start: int, count: int) -> str:
    """One INSERT of ``count`` rows (one transaction, one LSN) from ids ``start`` on."""
    tens = ", ".join(f"({n})" for n in range(10))
    hundreds = ", ".join(f"({n})" for n in range((count + 9) // 10))
    return (
        f"INSERT INTO dbo.{table} (id, item, qty) SELECT {start} + h.n * 10 + t.n, N'bulk', t.n"
        f" FROM (VALUES {hundreds}) AS h(n) CROSS JOIN (VALUES {tens}) AS t(n) WHERE h.n * 10 + t.n < {count}"
    )


def test_a_backlog_is_applied_in_bounded_windows_that_never_split_a_transaction(case: CdcCase) -> None:
    table = case.create()
    spec = case.spec(cdc="cdc: {max_window_changes: 1000}\n")
    case.run(spec)
    case.change(_rows_sql(table, 0, 1200))  # one transaction larger than a window: kept whole
    case.change(_rows_sql(table, 10_000, 500))
    case.change(_rows_sql(table, 20_000, 700))
    result = case.run(spec)[f"dbo.{table}"]
    assert result["rows"] == 2400
    assert result["windows"] == 2
    case.assert_in_sync(table)
    windows = [h for h in history(case, table) if h["kind"] == "changes"]
    assert [w["changes"] for w in windows] == [1200, 1200]
    assert windows[0]["to_lsn"] < windows[1]["from_lsn"]


def test_before_images_land_in_s3_and_never_in_snowflake(case: CdcCase) -> None:
    table = case.create()
    spec = case.spec(cdc="cdc: {before_images: true}\n")
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    case.run(spec)
    case.change(f"UPDATE dbo.{table} SET qty = 2 WHERE id = 1")
    case.run(spec)
    prefix = f"{case.schema.lower()}/dbo/{table}/changes/"
    (manifest_key,) = [k for k in case._keys(prefix) if k.endswith("_manifest.json")]
    rows = case._rows(case._json(manifest_key))
    assert [(r["_dtaas_op"], r["qty"]) for r in rows] == [("B", 1), ("U", 2)]
    case.assert_in_sync(table)  # the replay skips before-images, as the MERGE does


def test_with_s3_alone_a_window_counts_the_operations_it_read(case: CdcCase) -> None:
    """No MERGE reduces the changes: the window counts every insert, update and delete it landed."""
    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2), (3, N'plum', 3)")
    spec = case.spec(snowflake=False)
    assert case.run(spec)[f"dbo.{table}"]["windows"] == 0  # the snapshot
    case.change(f"INSERT INTO dbo.{table} VALUES (4, N'fig', NULL)")
    case.change(f"UPDATE dbo.{table} SET qty = 10 WHERE id = 1")
    case.change(f"DELETE FROM dbo.{table} WHERE id = 2")
    case.change(f"UPDATE dbo.{table} SET id = 30 WHERE id = 3")  # a key update: a delete and an insert
    for qty in (5, 6, 7):
        case.change(f"UPDATE dbo.{table} SET qty = {qty} WHERE id = 4")
    second = case.run(spec)[f"dbo.{table}"]
    assert second["rows"] == 8
    assert (second["inserted"], second["updated"], second["deleted"]) == (2, 4, 2)
    (window,) = [h for h in history(case, table) if h["kind"] == "changes"]
    assert (window["inserted"], window["updated"], window["deleted"]) == (2, 4, 2)


TRACKING = "cdc: {method: change_tracking}\n"


def test_change_tracking_applies_the_last_change_of_every_row_exactly_once(case: CdcCase) -> None:
    table = case.create(tracking=True)
    case.change(
        f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2), (3, N'plum', 3)", captured=False
    )
    first = case.run(case.spec(cdc=TRACKING))[f"dbo.{table}"]
    assert first["windows"] == 0
    case.assert_in_sync(table)
    for statement in (
        f"INSERT INTO dbo.{table} VALUES (4, N'fig', NULL)",
        f"UPDATE dbo.{table} SET qty = 10 WHERE id = 1",
        f"DELETE FROM dbo.{table} WHERE id = 2",
        f"UPDATE dbo.{table} SET id = 30 WHERE id = 3",
        f"UPDATE dbo.{table} SET qty = 5 WHERE id = 4",
        f"UPDATE dbo.{table} SET qty = 6 WHERE id = 4",
    ):
        case.change(statement, captured=False)
    second = case.run(case.spec(cdc=TRACKING))[f"dbo.{table}"]
    assert second["windows"] == 1
    assert second["rows"] == 5  # net: 1 updated, 2 and 3 deleted, 30 and 4 inserted
    case.assert_in_sync(table)
    assert case.run(case.spec(cdc=TRACKING))[f"dbo.{table}"]["windows"] == 0
    position = case.state.position(dag_id=DAG_ID, source_table=f"dbo.{table}")
    assert position is not None
    assert position.capture_instance == "change_tracking"
    # what wait_for_changes and the watcher ask: nothing now, this table after a change
    from airflow_provider_dtaas.triggers.cdc import pending_tables

    def pending() -> list[str]:
        return pending_tables(
            mssql_conn_id=case.conn_id,
            source_database=None,
            state_conn_id="it_state",
            dag_id=DAG_ID,
            tables=[f"dbo.{table}"],
        )

    assert pending() == []
    case.change(f"UPDATE dbo.{table} SET qty = 7 WHERE id = 4", captured=False)
    assert pending() == [f"dbo.{table}"]


def test_a_change_tracking_gap_fails_or_resnapshots(case: CdcCase) -> None:
    if case.conn_id != "it_mssql":
        pytest.skip("the double's cleanup procedure stands in for Change Tracking retention")
    table = case.create(tracking=True)
    case.run(case.spec(cdc=TRACKING))
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'lost', 1)", captured=False)
    case.change(f"INSERT INTO dbo.{table} VALUES (2, N'kept', 2)", captured=False)
    (current,) = case.mssql.get_first("SELECT CHANGE_TRACKING_CURRENT_VERSION()")
    case.mssql.run(
        f"EXEC sys.sp_dtaas_change_tracking_cleanup @table_name = N'dbo.{table}', "
        f"@min_valid_version = {current}"
    )
    with pytest.raises(AirflowFailException, match=r"older than the table's minimum valid version"):
        case.run(case.spec(cdc=TRACKING))
    case.run(case.spec(cdc="cdc: {method: change_tracking, gap_policy: resnapshot}\n"))
    case.assert_in_sync(table)
    assert [h["kind"] for h in history(case, table)] == ["snapshot", "resnapshot"]


def test_a_table_without_change_tracking_gets_the_statement_that_enables_it(case: CdcCase) -> None:
    table = case.create()  # CDC, not Change Tracking
    with pytest.raises(AirflowFailException, match=rf"ALTER TABLE dbo.{table} ENABLE CHANGE_TRACKING"):
        case.run(case.spec(cdc=TRACKING))


INCREMENTAL_TABLE = (
    "id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL, version bigint NOT NULL"
)


def test_incremental_upserts_the_rows_whose_watermark_grew(case: CdcCase) -> None:
    table = case.create(INCREMENTAL_TABLE, tracking=None)
    spec = case.spec(mode="incremental", cdc="watermark_column: version\n")
    case.mssql.run(
        f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1, 1), (2, N'pear', 2, 2), (3, N'plum', 3, 3)"
    )
    first = case.run(spec)[f"dbo.{table}"]
    assert (first["rows"], first["inserted"]) == (3, 3)  # the first window is the whole table
    case.assert_in_sync(table, replay_from_snapshot=False)
    case.mssql.run(f"UPDATE dbo.{table} SET qty = 10, version = 4 WHERE id = 1")
    case.mssql.run(f"INSERT INTO dbo.{table} VALUES (4, N'fig', 4, 5)")
    second = case.run(spec)[f"dbo.{table}"]
    assert (second["rows"], second["inserted"], second["updated"]) == (2, 1, 1)
    case.assert_in_sync(table, replay_from_snapshot=False)
    assert case.run(spec)[f"dbo.{table}"]["windows"] == 0  # nothing grew
    # a run asked to read the table again upserts every row and changes no value
    again = case.run(spec, resnapshot=[f"dbo.{table}"])[f"dbo.{table}"]
    assert (again["rows"], again["inserted"]) == (4, 0)
    case.assert_in_sync(table, replay_from_snapshot=False)
    windows = [h for h in history(case, table) if h["kind"] == "changes"]
    assert [w["changes"] for w in windows] == [3, 2, 4]


def _drop_target(case: CdcCase, table: str) -> None:
    DtaasSnowflakeHook(snowflake_conn_id=case.snowflake_conn).run(
        f'DROP TABLE ITDB.{case.schema}."{table.upper()}"'
    )


def test_a_dropped_snowflake_target_is_loaded_whole_again_not_patched(case: CdcCase) -> None:
    table = case.create()
    case.change(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2)")
    case.run(case.spec())
    _drop_target(case, table)
    case.change(f"UPDATE dbo.{table} SET qty = 5 WHERE id = 2")
    case.run(case.spec())
    case.assert_in_sync(table)  # row 1, which no change names, is back too
    assert [h["kind"] for h in history(case, table)][:2] == ["snapshot", "resnapshot"]
    assert "does not exist although" in history(case, table)[1]["detail"]


def test_incremental_reads_the_whole_table_again_when_its_target_is_gone(case: CdcCase) -> None:
    table = case.create(INCREMENTAL_TABLE, tracking=None)
    spec = case.spec(mode="incremental", cdc="watermark_column: version\n")
    case.mssql.run(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1, 1), (2, N'pear', 2, 2)")
    case.run(spec)
    _drop_target(case, table)
    case.mssql.run(f"UPDATE dbo.{table} SET qty = 5, version = 3 WHERE id = 2")
    assert case.run(spec)[f"dbo.{table}"]["rows"] == 2
    assert case.snowflake(table) == case.source(table)
