"""Runs of real specs for the bad-input corpus, and the two stand-ins of misbehaving servers it needs.

:class:`Bench` runs every table of one or more specs as the DAG would (a full load; in the CDC modes
the snapshot, skipped or not, then the changes), each table alone: a failure is kept as that table's
:class:`Outcome` and the other tables run on. It reads back what the destinations hold (Snowflake
rows, the S3 snapshot ``_latest.json`` names, every S3 object of the table), so a test can show
that a failed table lost nothing and that the others landed.

:class:`StallingProxy` stands for a slow SQL Server: a TCP proxy in front of the double that stops
answering a connection once its client sent a query holding a marker. :class:`KmsRefusingS3` stands
for S3 refusing an SSE-KMS write with a key the caller may not use: moto's own server application
(same in-process backends as the ``moto_endpoint`` server), which answers such a write as AWS does,
because moto accepts any key on upload.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dtaas.core.identifiers import quote_mssql_table, quote_snowflake_path, safe_key
from airflow_provider_dtaas.core.lsn import Position
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.cdc_operator import SqlServerApplyChangesOperator
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

TABLE = "id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL"
ROWS = [(1, "apple", 1), (2, "pear", 2), (3, "plum", None)]


@dataclass
class Outcome:
    """One table's tasks in one run: what the last one returned, or what the first failing one raised."""

    spec: str
    dag_id: str
    run_id: str
    result: dict[str, Any] | None = None
    error: Exception | None = None
    seconds: float = 0.0

    def failure(self, *, permanent: bool) -> str:
        """The failure's message, after checking it fails the task for good (no retry) or for now."""
        assert self.error is not None, f"the table did not fail: {self.result}"
        assert isinstance(self.error, AirflowFailException) is permanent, repr(self.error)
        return str(self.error)


@dataclass(frozen=True)
class Landed:
    """What a table's destinations hold: Snowflake rows (None: no target table), the rows of the S3
    snapshot ``_latest.json`` names (None: no snapshot) and every S3 object key of the table."""

    snowflake: list[tuple[Any, ...]] | None
    s3_snapshot: list[tuple[Any, ...]] | None
    s3_keys: list[str]


@dataclass
class Bench:
    """Tables in the SQL Server double, specs over them, and the destinations of this test."""

    source: MsSqlHook
    state: DtaasStateHook
    s3: DtaasS3Hook
    bucket: str
    snowflake: DtaasSnowflakeHook
    schema: str  # the Snowflake schema of this test, in database ITDB
    tables: list[str] = field(default_factory=list)

    def table(self, definition: str = TABLE, *, rows: list[tuple[Any, ...]] = ROWS, cdc: bool = False) -> str:
        """A new table ``dbo.bi_<hex>`` with ``rows``; with ``cdc``, captured from before the rows."""
        name = f"bi_{uuid.uuid4().hex[:10]}"
        self.source.run(f"CREATE TABLE dbo.{name} ({definition})")
        self.tables.append(name)
        if cdc:
            self.source.run("EXEC sys.sp_cdc_enable_db")
            self.source.run(
                f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{name}', "
                "@role_name = NULL"
            )
        for row in rows:
            self.source.run(f"INSERT INTO dbo.{name} VALUES (%s, %s, %s)", parameters=row)
        return name

    def spec(
        self,
        tables: list[str],
        *,
        name: str = "bad_input",
        mode: str = "full_load",
        source: str = "it_mssql",
        schema: str = "dbo",
        s3_conn: str = "it_s3",
        bucket: str | None = None,
        s3: str = "",
        snowflake_database: str | None = "ITDB",
        more: str = "",
        table_settings: str = "",
    ) -> str:
        """A spec loading ``tables`` of ``schema`` into this test's bucket (or ``bucket``) and its
        Snowflake schema in ``snowflake_database`` (None: no Snowflake destination); ``s3`` adds
        settings to the S3 destination, ``more`` top-level keys and ``table_settings`` keys to every
        table."""
        listed = "\n".join(f"  - {{name: {json.dumps(f'{schema}.{t}')}{table_settings}}}" for t in tables)
        snowflake = ""
        if snowflake_database is not None:
            target = f"database: {snowflake_database}, schema: {self.schema}"
            snowflake = f"  snowflake: {{conn_id: it_snowflake, {target}}}\n"
        return (
            f"name: {name}\nmode: {mode}\n{more}source: {{conn_id: {source}}}\ndestinations:\n"
            f"  s3: {{conn_id: {s3_conn}, bucket: {bucket or self.bucket}{s3}}}\n{snowflake}"
            f"tables:\n{listed}\n"
        )

    def run(self, *specs: str, plans: dict[str, dict[str, Any]] | None = None) -> dict[str, Outcome]:
        """One DAG run of each spec, every table's tasks in turn; the outcome of each table. ``plans``
        changes the plan of a table (by name) as something other than the spec loader could."""
        from airflow.sdk import DAG

        outcomes: dict[str, Outcome] = {}
        for text in specs:
            spec = parse_spec(text, display_name="bad_input.yaml").model_copy(
                update={"state_conn_id": "it_state"}
            )
            dag_id, run_id = f"dtaas_{spec.name}", f"manual__{uuid.uuid4()}"
            self.state.begin_execution(
                spec_name=spec.name, dag_id=dag_id, run_id=run_id, mode=spec.mode, tables=len(spec.tables)
            )
            for plan in plan_tables(spec):
                common: dict[str, Any] = {
                    "spec_name": spec.name,
                    "table_plan": plan.to_dict() | (plans or {}).get(plan.source_table, {}),
                    "mssql_conn_id": spec.source.conn_id,
                    "state_conn_id": "it_state",
                }
                tasks: list[Any] = []  # as the DAG factory builds them (mode incremental: changes only)
                with DAG(dag_id, schedule=None):
                    if plan.cdc is None or plan.cdc.mode != "incremental":
                        tasks.append(SqlServerFullLoadOperator(task_id="load", **common))
                    if plan.cdc is not None:
                        tasks.append(SqlServerApplyChangesOperator(task_id="apply_changes", **common))
                outcome = Outcome(spec.name, dag_id, run_id)
                started = time.monotonic()
                for task in tasks:
                    context: dict[str, Any] = {
                        "run_id": run_id,
                        "ti": SimpleNamespace(try_number=1),
                        "params": {},
                        "logical_date": None,
                    }
                    try:
                        outcome.result = task.execute(context)
                    except AirflowSkipException:  # a CDC table whose changes continue
                        continue
                    except Exception as err:  # the DAG's later tasks of this table do not run
                        outcome.error = err
                        break
                outcome.seconds = time.monotonic() - started
                outcomes[plan.source_table] = outcome
        return outcomes

    def failure(
        self, outcomes: dict[str, Outcome], table: str, *, permanent: bool, schema: str = "dbo"
    ) -> str:
        """The table's failure message, after checking it is permanent (or retryable) and recorded as
        the table's error in the run's record in the state store."""
        outcome = outcomes[table]
        message = outcome.failure(permanent=permanent)
        row = self.state.get_first(
            "SELECT t.status, t.error FROM dtaas.table_executions t JOIN dtaas.executions e"
            " ON e.id = t.execution_id WHERE e.dag_id = %s AND e.run_id = %s AND t.source_table = %s",
            parameters=(outcome.dag_id, outcome.run_id, f"{schema}.{table}"),
        )
        assert row is not None, f"no record of {schema}.{table} in run {outcome.run_id}"
        status, error = row
        assert status == "failed"
        assert message == f"spec {outcome.spec}, table {schema}.{table}: {error}"
        return message

    def position(self, table: str, spec_name: str = "bad_input") -> Position | None:
        return self.state.position(dag_id=f"dtaas_{spec_name}", source_table=f"dbo.{table}")

    def source_rows(self, table: str) -> list[tuple[Any, ...]]:
        return [
            tuple(r) for r in self.source.get_records(f"SELECT id, item, qty FROM dbo.{table} ORDER BY id")
        ]

    def landed(self, table: str, *, schema: str = "dbo") -> Landed:
        keys = self.s3_keys(table, schema=schema)
        return Landed(self._snowflake_rows(table), self._s3_snapshot(_prefix(schema, table)), keys)

    def s3_keys(self, table: str, *, schema: str = "dbo") -> list[str]:
        """Every S3 object of the table, sorted."""
        return sorted(self.s3.list_keys(bucket_name=self.bucket, prefix=_prefix(schema, table)) or [])

    def assert_landed(self, outcome: Outcome, table: str) -> None:
        """The table's run succeeded and its Snowflake target equals the source, and so does its S3
        snapshot, unless the run applied changes (S3 holds them as change windows beside it)."""
        assert outcome.error is None, outcome.error
        assert outcome.result is not None
        expected = self.source_rows(table)
        landed = self.landed(table)
        assert landed.snowflake == expected
        if outcome.result.get("windows"):
            assert [key for key in landed.s3_keys if "/changes/" in key]
        else:
            assert landed.s3_snapshot == expected

    def _snowflake_rows(self, table: str) -> list[tuple[Any, ...]] | None:
        with self.snowflake.session() as session:
            found = session.execute(
                f"SELECT COUNT(*) FROM {quote_snowflake_path('ITDB', 'INFORMATION_SCHEMA', 'TABLES')}"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (self.schema, table.upper()),
            )
            if not found[0][0]:
                return None
            path = quote_snowflake_path("ITDB", self.schema, table.upper())
            return [
                tuple(r) for r in session.execute(f'SELECT "ID", "ITEM", "QTY" FROM {path} ORDER BY "ID"')
            ]

    def _s3_snapshot(self, prefix: str) -> list[tuple[Any, ...]] | None:
        pointer = self.s3.get_json(bucket=self.bucket, key=f"{prefix}_latest.json")
        if pointer is None:
            return None
        listed = self.s3.get_json(bucket=self.bucket, key=pointer["manifest"])
        assert listed is not None
        rows: list[tuple[Any, ...]] = []
        for entry in listed["files"]:
            body = self.s3.get_conn().get_object(Bucket=self.bucket, Key=entry["key"])["Body"].read()
            rows += [(r["id"], r["item"], r["qty"]) for r in pq.read_table(io.BytesIO(body)).to_pylist()]
        return sorted(rows)

    def drop(self) -> None:
        for table in self.tables:
            with contextlib.suppress(Exception):  # some tests drop their own
                self.source.run(f"DROP TABLE {quote_mssql_table('dbo', table)}")
        with self.snowflake.session() as session:
            session.execute(f"DROP SCHEMA IF EXISTS {quote_snowflake_path('ITDB', self.schema)} CASCADE")


def _prefix(schema: str, table: str) -> str:
    return f"{safe_key(schema)}/{safe_key(table)}/"  # where the planner places a table's objects


class StallingProxy:
    """A TCP proxy to ``port`` that holds the server's answer on a connection once its client sent
    ``marker`` (UTF-16, as TDS carries SQL text) for ``delay`` seconds, or for good (None): a server
    that is slow for that query."""

    def __init__(self, port: int, marker: str, *, delay: float | None = None) -> None:
        self._target = port
        self._marker = marker.encode("utf-16-le")
        self._delay = delay
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.stalled = 0  # connections stalled so far
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self._target))
                stalled = threading.Event()
                threading.Thread(target=self._up, args=(client, server, stalled), daemon=True).start()
                threading.Thread(target=self._down, args=(server, client, stalled), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, stalled: threading.Event) -> None:
        seen = b""
        with contextlib.suppress(OSError), client, server:
            while data := client.recv(65536):
                seen = seen[-len(self._marker) :] + data
                if self._marker in seen and not stalled.is_set():
                    stalled.set()
                    self.stalled += 1
                    seen = b""
                server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket, stalled: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if stalled.is_set():
                    if self._stop.wait(self._delay):  # closed while holding the answer
                        return
                    stalled.clear()
                client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class KmsRefusingS3:
    """moto's server application, with moto's backends (shared in-process with ``moto_endpoint``),
    that answers a write encrypted with a key in ``denied`` as S3 does when the caller may not use
    the key: 403 AccessDenied naming kms:GenerateDataKey. moto itself accepts any key on upload."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self.denied: set[str] = set()
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        key = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID")
        if environ["REQUEST_METHOD"] in ("PUT", "POST") and key in self.denied:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>User: '
                "arn:aws:iam::123456789012:user/dtaas is not authorized to perform: kms:GenerateDataKey on "
                f"resource: {key} because no identity-based policy allows the kms:GenerateDataKey action"
                "</Message><RequestId>DTAASTEST</RequestId></Error>"
            ).encode()
            start_response(
                "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self._moto(environ, start_response)

    def close(self) -> None:
        self._server.shutdown()
