"""The Snowflake stand-in: fakesnow's server app behind uvicorn over HTTPS.

The certificate is issued by a throw-away CA made per stack; clients trust it through
``REQUESTS_CA_BUNDLE`` pointing at the system bundle plus that CA, so the unmodified
SnowflakeHook and connector connect as they would to an account.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REMOVE = re.compile(
    r"^\s*(?:REMOVE|RM)\s+@(?P<stage>(?:\"[^\"]*\"|[^\"/\s])+)(?P<path>/\S*)?\s*;?\s*$", re.IGNORECASE
)


_QUERY_TAG = re.compile(
    r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\s*=\s*'(?P<tag>(?:[^'\\]|\\.|'')*)'\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
# Query tags the stand-in was sent, newest last (fakesnow 0.12 does not implement QUERY_TAG).
QUERY_TAGS: list[str] = []
# A quoted table-stage name (@"DB"."S".%"T"): fakesnow 0.12 resolves only the unquoted form, which
# names the same table when the name is upper case.
_QUOTED_TABLE_STAGE = re.compile(r'(?<=[.@])%"([A-Z_][A-Z0-9_$]*)"')
_STAGE_STATEMENT = re.compile(r"^\s*(?:PUT|COPY|LIST|LS|REMOVE|RM)\b", re.IGNORECASE)
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:IF\s+EXISTS\s+)?(?P<name>.+?)\s*;?\s*$", re.I | re.S)
# Statements that create or drop tables: the stand-in records when each table was created, which
# fakesnow 0.12 does not (its INFORMATION_SCHEMA.TABLES.CREATED is 1970-01-01 for every table).
_TABLE_DDL = re.compile(
    r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TRANSIENT\s+)?TABLE|DROP\s+(?:TABLE|SCHEMA))\b", re.I
)
_CREATED = "_fs_global._fs_information_schema._dtaas_created"
_CREATED_DDL = (
    f"CREATE TABLE IF NOT EXISTS {_CREATED} (table_catalog VARCHAR, table_schema VARCHAR,"
    " table_name VARCHAR, created TIMESTAMPTZ, PRIMARY KEY (table_catalog, table_schema, table_name))"
)


@dataclass(frozen=True)
class RecordedStatement:
    """One statement as a client sent it; ``session`` is a digest of its session token (statements
    of one connection share it)."""

    session: str
    text: str


# Every statement the stand-in was sent, newest last (the most recent few thousand).
STATEMENTS: deque[RecordedStatement] = deque(maxlen=5000)


class StageRemove:
    """Adds Snowflake's ``REMOVE @stage/path`` and ``ALTER SESSION SET QUERY_TAG`` to fakesnow 0.12,
    which lack them (tags are recorded in ``QUERY_TAGS``); records every statement, as the client
    sent it, in ``STATEMENTS``; resolves quoted upper-case table-stage names (``@"DB"."S".%"T"``);
    and makes ``TRUNCATE TABLE`` forget the table's load history, as Snowflake does (fakesnow keeps
    it, so the same files would be skipped by the next COPY).

    The files under the path are deleted from fakesnow's internal-stage folder and the statement is
    answered, like Snowflake does, with one ``(name, result)`` row per removed file.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path") != "/queries/v1/query-request":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        gzipped = any(k == b"content-encoding" and v == b"gzip" for k, v in scope.get("headers", []))
        body = json.loads(gzip.decompress(raw) if gzipped else raw)
        STATEMENTS.append(RecordedStatement(_session_of(scope), body.get("sqlText", "")))
        staging = _STAGE_STATEMENT.match(body.get("sqlText", ""))
        if staging:
            body["sqlText"] = _QUOTED_TABLE_STAGE.sub(r"%\1", body["sqlText"])
        truncated = _TRUNCATE.match(body.get("sqlText", ""))
        if truncated:
            _forget_load_history(_session_token(scope), truncated["name"])
        if _TABLE_DDL.match(body.get("sqlText", "")):
            _record_creation(_session_token(scope), body["sqlText"])
        match = _REMOVE.match(body.get("sqlText", ""))
        tagged = _QUERY_TAG.match(body.get("sqlText", ""))
        if tagged:
            QUERY_TAGS.append(re.sub(r"\\(.)", r"\1", tagged["tag"]).replace("''", "'"))
            body["sqlText"] = "SELECT 'Statement executed successfully.' AS \"status\""
        if match:
            body["sqlText"] = _answer_sql(_remove_files(match["stage"], (match["path"] or "/").lstrip("/")))
        if match or tagged or staging:
            raw = json.dumps(body).encode()
            headers = [
                (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
            ]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(raw)).encode())]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)


def _session_token(scope: Scope) -> str:
    auth = dict(scope.get("headers", [])).get(b"authorization", b"").decode()
    return auth.removeprefix('Snowflake Token="').removesuffix('"')


def _forget_load_history(token: str, name: str) -> None:
    """Delete the load history of a table about to be truncated (the session's DuckDB database)."""
    import sqlglot
    from fakesnow import server

    conn = server.sessions.get(token)
    if conn is None:
        return
    table = sqlglot.exp.to_table(name, dialect="snowflake")
    catalog = table.catalog or conn.database
    schema = table.db or conn.schema
    conn._duck_conn.cursor().execute(
        f"DELETE FROM {catalog}._fs_information_schema._fs_load_history"
        " WHERE SCHEMA_NAME = ? AND TABLE_NAME = ?",
        [schema, table.name],
    )


def _record_creation(token: str, text: str) -> None:
    """Note when a table is created (``CREATE OR REPLACE`` makes it anew; ``CREATE`` of a table that
    exists changes nothing) and forget the tables a ``DROP TABLE`` or ``DROP SCHEMA`` removes."""
    import sqlglot
    from fakesnow import server

    conn = server.sessions.get(token)
    try:
        statement = sqlglot.parse_one(text, read="snowflake")
    except sqlglot.errors.ParseError:
        return
    if conn is None or not isinstance(statement, sqlglot.exp.Create | sqlglot.exp.Drop):
        return
    table = statement.find(sqlglot.exp.Table)
    if table is None:
        return
    kind = str(statement.args.get("kind") or "").upper()
    if kind == "SCHEMA":  # DROP SCHEMA db.s: sqlglot reads it as a table of catalog db, schema s
        catalog, schema, name = table.catalog or conn.database, table.db, None
    else:
        catalog, schema, name = table.catalog or conn.database, table.db or conn.schema, table.name
    key = [str(catalog).upper(), str(schema).upper()]
    cursor = conn._duck_conn.cursor()
    cursor.execute(_CREATED_DDL)
    if isinstance(statement, sqlglot.exp.Drop):
        where = " AND table_name = ?" if name is not None else ""
        cursor.execute(
            f"DELETE FROM {_CREATED} WHERE table_catalog = ? AND table_schema = ?{where}",
            [*key, name.upper()] if name is not None else key,
        )
        return
    conflict = "UPDATE SET created = now()" if statement.args.get("replace") else "NOTHING"
    cursor.execute(
        f"INSERT INTO {_CREATED} VALUES (?, ?, ?, now()) ON CONFLICT DO {conflict}", [*key, str(name).upper()]
    )


def age_table(database: str, schema: str, table: str, *, hours: float) -> None:
    """Tests: make the stand-in report ``table`` as created ``hours`` ago (fakesnow's shared database)."""
    from fakesnow import server

    server.shared_fs.duck_conn.cursor().execute(
        f"UPDATE {_CREATED} SET created = now() - to_seconds(?)"
        " WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
        [hours * 3600, database.upper(), schema.upper(), table.upper()],
    )


def _report_creation_times() -> None:
    """fakesnow 0.12 reports every table as created on 1970-01-01; its INFORMATION_SCHEMA.TABLES view
    (made per database) reads the times :func:`_record_creation` notes (1970 for tables it never saw)."""
    from string import Template

    from fakesnow import info_schema

    view = info_schema.SQL_CREATE_INFORMATION_SCHEMA_TABLES_VIEW.template
    if _CREATED in view:
        return
    created = 'to_timestamp(0)::timestamptz AS "CREATED"'
    where = "where tables.database_name = '${catalog}'"
    if created not in view or where not in view:
        raise RuntimeError("fakesnow's INFORMATION_SCHEMA.TABLES view changed: update _report_creation_times")
    view = view.replace(
        created, 'coalesce(_dtaas_created.created, to_timestamp(0)::timestamptz) AS "CREATED"'
    )
    view = view.replace(
        where,
        f"left join {_CREATED} _dtaas_created on"
        " upper(tables.database_name) = _dtaas_created.table_catalog AND"
        " upper(tables.schema_name) = _dtaas_created.table_schema AND"
        " upper(tables.table_name) = _dtaas_created.table_name\n" + where,
    )
    info_schema.SQL_CREATE_INFORMATION_SCHEMA_TABLES_VIEW = Template(f"{_CREATED_DDL};\n{view}")


def _session_of(scope: Scope) -> str:
    """A digest of the session token: names a session in ``STATEMENTS`` without keeping the token."""
    return hashlib.sha256(_session_token(scope).encode()).hexdigest()[:12]


def _remove_files(stage_var: str, path: str) -> list[str]:
    from fakesnow.transforms import stage

    database, schema, name = stage.parts_from_var(stage_var, None, None)
    root = Path(stage.internal_dir(f"{database}.{schema}.{name}"))
    target = Path(stage.internal_dir(f"{database}.{schema}.{name}", path))
    if not target.exists():
        return []
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    removed = [f"{name.lower()}/{p.relative_to(root)}" for p in files]
    if target.is_file():
        os.remove(target)
    else:
        shutil.rmtree(target)
    return removed


def _answer_sql(removed: list[str]) -> str:
    if not removed:
        return 'SELECT NULL::VARCHAR AS "name", NULL::VARCHAR AS "result" LIMIT 0'
    rows = ", ".join("('" + name.replace("'", "''") + "', 'removed')" for name in removed)
    return f'SELECT column1 AS "name", column2 AS "result" FROM (VALUES {rows})'


def build_app() -> ASGIApp:
    from fakesnow.server import app

    _match_columns_as_written()
    _report_creation_times()
    return StageRemove(app)


def _match_columns_as_written() -> None:
    """fakesnow 0.12 upper-cases the table's column names before ``COPY ... MATCH_BY_COLUMN_NAME``,
    so ``CASE_SENSITIVE`` never matches a lower-case column; Snowflake compares names as written."""
    from fakesnow import copy_into

    def table_columns(table: Any, duck_conn: Any, current_database: Any, current_schema: Any) -> list[str]:
        described = copy_into._describe_table(table, duck_conn, current_database, current_schema)
        return [str(name) for name, _kind in described]

    def match(parquet: list[str], target: list[str], mode: Any) -> dict[str, str]:
        if mode == copy_into.MatchByColumnName.NONE:
            return {}
        if mode == copy_into.MatchByColumnName.CASE_SENSITIVE:
            return {column: column for column in target if column in parquet}
        by_upper = {name.upper(): name for name in parquet}
        return {column: by_upper[column.upper()] for column in target if column.upper() in by_upper}

    copy_into._get_table_columns = table_columns  # type: ignore[assignment]
    copy_into._match_parquet_columns = match  # type: ignore[assignment]


def ensure_certificates(certs_dir: Path) -> Path:
    """Create the CA, the server certificate (localhost, 127.0.0.1) and the client CA bundle once."""
    server_pem = certs_dir / "snowflake-server.pem"
    bundle = certs_dir / "ca-bundle.pem"
    if server_pem.exists() and bundle.exists():
        return bundle
    import certifi
    import trustme

    certs_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="DTaaS local stack")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    server_pem.chmod(0o600)
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.cert_pem.bytes())
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description="fakesnow over HTTPS for the DTaaS local stack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certs-dir", type=Path, required=True)
    args = parser.parse_args()
    ensure_certificates(args.certs_dir)
    import uvicorn

    pem = str(args.certs_dir / "snowflake-server.pem")
    uvicorn.run(
        build_app(), host=args.host, port=args.port, ssl_certfile=pem, ssl_keyfile=pem, log_level="warning"
    )


if __name__ == "__main__":
    main()
