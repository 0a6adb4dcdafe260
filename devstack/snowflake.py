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
    which lack them (tags are recorded in ``QUERY_TAGS``), and records every statement in
    ``STATEMENTS``.

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
        match = _REMOVE.match(body.get("sqlText", ""))
        tagged = _QUERY_TAG.match(body.get("sqlText", ""))
        if tagged:
            QUERY_TAGS.append(re.sub(r"\\(.)", r"\1", tagged["tag"]).replace("''", "'"))
            body["sqlText"] = "SELECT 'Statement executed successfully.' AS \"status\""
        if match:
            body["sqlText"] = _answer_sql(_remove_files(match["stage"], (match["path"] or "/").lstrip("/")))
        if match or tagged:
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


def _session_of(scope: Scope) -> str:
    token = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
    return hashlib.sha256(token).hexdigest()[:12]


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

    return StageRemove(app)


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
