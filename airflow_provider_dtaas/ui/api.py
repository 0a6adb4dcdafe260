"""The progress view's FastAPI app, mounted by the plugin under ``/dtaas`` in Airflow's api-server.

Every API route needs an Airflow user (the UI's session cookie or a bearer token, as Airflow's own
REST API) and asks Airflow's auth manager: a user sees only the DAGs they may read, and the actions
(resync a table, retry the failed tables) need the right to run the DAG. Actions go through
Airflow's own REST API with the caller's credentials, so Airflow validates and authorizes them as if
the user had clicked its buttons; each is written to the DTaaS audit log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Annotated, Any, NoReturn

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.ui import queries
from airflow_provider_dtaas.ui.reader import HeldConnection

STATE_CONN_ID = "dtaas_state"
METRICS_TOKEN_ENV = "DTAAS_METRICS_TOKEN"  # noqa: S105 (the name of a variable, not a secret)
# the stream looks for new progress this often; operators write at most every 0.5 s per chunk
STREAM_POLL_SECONDS = 0.5
STREAM_KEEPALIVE_SECONDS = 15.0

_STATIC = resources.files("airflow_provider_dtaas.ui").joinpath("static")
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


UserDep = Annotated[Any, Depends(get_user)]


class ResyncRequest(BaseModel):
    table: str = Field(description="the source table to load again in full, as schema.table")


class ActionResult(BaseModel):
    dag_id: str
    run_id: str
    action: str


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _can(user: Any, dag_id: str, method: str, entity: str | None = None) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        _auth_manager().is_authorized_dag(
            method=method,
            user=user,
            access_entity=DagAccessEntity(entity) if entity else None,
            details=DagDetails(id=dag_id),
        )
    )


def _require_read(user: Any, dag_id: str) -> None:
    if not _can(user, dag_id, "GET"):
        raise HTTPException(status_code=403, detail=f"you may not read DAG {dag_id}")


_migrated: set[str] = set()


def _state() -> DtaasStateHook:
    """The state store, brought to this version's schema on first use (a view of an older store
    would miss columns; migrations are idempotent and run under a lock)."""
    hook = DtaasStateHook(STATE_CONN_ID)
    if STATE_CONN_ID not in _migrated:
        try:
            hook.migrate()
        except Exception as err:  # no connection, or the database is down: say which and what to do
            raise HTTPException(
                status_code=503,
                detail=f"the DTaaS state store (Airflow connection {STATE_CONN_ID!r}) cannot be reached "
                f"from the api-server: {type(err).__name__}: {err}. Create the connection (a PostgreSQL "
                "database) for the api-server as for the workers.",
            ) from err
        _migrated.add(STATE_CONN_ID)
    return hook


@contextmanager
def _reading() -> Iterator[HeldConnection]:
    """One state-store connection for all the queries of a request (a hook opens one per query)."""
    reader = HeldConnection(_state())
    try:
        yield reader
    finally:
        reader.close()


def _run_view(reader: HeldConnection, dag_id: str, run_id: str | None) -> dict[str, Any] | None:
    """A run's view with its throughput chart; None when DTaaS has no record of it."""
    view = queries.run_view(reader, dag_id, run_id)
    if view is not None:
        view["throughput"] = queries.throughput(reader, view["execution_id"])
    return view


def _run_or_404(reader: HeldConnection, dag_id: str, run_id: str | None) -> dict[str, Any]:
    view = queries.run_view(reader, dag_id, run_id)
    if view is None:
        _no_record(dag_id, run_id)
    return view


def _no_record(dag_id: str, run_id: str | None) -> NoReturn:
    shown = f"run {run_id} of DAG {dag_id}" if run_id else f"DAG {dag_id}"
    raise HTTPException(status_code=404, detail=f"DTaaS has no record of {shown}")


def _latest(run_id: str) -> str | None:
    return None if run_id == "latest" else run_id


def _credentials(request: Request) -> dict[str, str]:
    """The caller's own credentials, to call Airflow's REST API on their behalf."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    header = request.headers.get("authorization")
    if header:
        return {"Authorization": header}
    return {"Authorization": f"Bearer {request.cookies.get(COOKIE_NAME_JWT_TOKEN, '')}"}


def _airflow_api(request: Request, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url = str(request.base_url).rstrip("/") + "/api/v2/" + path
    response = httpx.request(method, url, json=body, headers=_credentials(request), timeout=30)
    if response.status_code >= 400:
        raise HTTPException(
            status_code=response.status_code, detail=response.json().get("detail", response.text)
        )
    return dict(response.json())


def _dtaas_dags() -> list[str]:
    """The DAGs Airflow holds that DTaaS built (tag ``dtaas``), so specs that never ran are listed too."""
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(DagModel.dag_id)
            .join(DagTag, DagTag.dag_id == DagModel.dag_id)
            .where(DagTag.name == "dtaas", DagModel.is_stale.is_(False))
        )
        return [str(dag_id) for dag_id in session.scalars(query)]


def _check_metrics_token(request: Request) -> None:
    """Prometheus scrapes without an Airflow login: when ``DTAAS_METRICS_TOKEN`` is set on the
    api-server, a scrape must send it as a bearer token (Prometheus' ``authorization`` setting)."""
    expected = os.environ.get(METRICS_TOKEN_ENV)
    if not expected:
        return
    sent = request.headers.get("authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
        raise HTTPException(
            status_code=401, detail=f"send the token of {METRICS_TOKEN_ENV} as a bearer token"
        )


def _page() -> HTMLResponse:
    return HTMLResponse(_STATIC.joinpath("index.html").read_text("utf-8"))


def create_app() -> FastAPI:
    app = FastAPI(
        title="DTaaS progress",
        description="Live progress of DTaaS transfers, read from the DTaaS state store.",
        version="1",
    )

    @app.get("/", include_in_schema=False)
    def overview_page() -> HTMLResponse:
        return _page()

    @app.get("/dags/{dag_id}", include_in_schema=False)
    def dag_page(dag_id: str) -> HTMLResponse:
        return _page()

    @app.get("/dags/{dag_id}/runs/{run_id}", include_in_schema=False)
    def run_page(dag_id: str, run_id: str) -> HTMLResponse:
        return _page()

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        suffix = name[name.rfind(".") :]
        if "/" in name or suffix not in _STATIC_TYPES or not _STATIC.joinpath(name).is_file():
            raise HTTPException(status_code=404, detail="not found")
        return Response(_STATIC.joinpath(name).read_bytes(), media_type=_STATIC_TYPES[suffix])

    @app.get("/metrics", summary="Prometheus metrics of every DTaaS run (text format)")
    def metrics(request: Request) -> Response:
        _check_metrics_token(request)
        from prometheus_client import CONTENT_TYPE_LATEST

        from airflow_provider_dtaas.ui.metrics import render

        with _reading() as reader:
            return Response(render(reader), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/transfers", summary="Every DTaaS DAG you may read, with its last run")
    def transfers(user: UserDep) -> list[dict[str, Any]]:
        readable = _auth_manager().get_authorized_dag_ids(user=user, method="GET")
        with _reading() as reader:
            return queries.overview(reader, readable, known=_dtaas_dags())

    @app.get("/api/dags/{dag_id}/runs/{run_id}", summary="A run's tables and totals ('latest': the last run)")
    def run(dag_id: str, run_id: str, user: UserDep) -> dict[str, Any]:
        _require_read(user, dag_id)
        with _reading() as reader:
            view = _run_view(reader, dag_id, _latest(run_id))
        if view is None:
            _no_record(dag_id, _latest(run_id))
        view["can_act"] = _can(user, dag_id, "POST", "RUN")
        return view

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/stream",
        summary="Server-sent events: the run's tables and totals, each time they change",
        response_class=StreamingResponse,
    )
    async def stream(dag_id: str, run_id: str, request: Request, user: UserDep) -> StreamingResponse:
        _require_read(user, dag_id)
        with _reading() as reader:
            _run_or_404(reader, dag_id, _latest(run_id))
        return StreamingResponse(
            _events(request, dag_id, _latest(run_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/dags/{dag_id}/audit", summary="Who asked for what on this DAG, newest first")
    def audit(dag_id: str, user: UserDep) -> list[dict[str, Any]]:
        _require_read(user, dag_id)
        with _reading() as reader:
            return queries.audit_log(reader, dag_id)

    @app.post("/api/dags/{dag_id}/resync", summary="Load one table again in full, in a new run")
    def resync(dag_id: str, body: ResyncRequest, request: Request, user: UserDep) -> ActionResult:
        if not _can(user, dag_id, "POST", "RUN"):
            raise HTTPException(status_code=403, detail=f"you may not run DAG {dag_id}")
        with _reading() as reader:
            last = _run_or_404(reader, dag_id, None)
        known = {t["table"] for t in last["tables"]}
        if body.table not in known:
            raise HTTPException(
                status_code=404, detail=f"table {body.table} is not in DAG {dag_id}'s last run"
            )
        conf: dict[str, Any] = {"tables": [body.table]}
        if last["mode"] != "full_load":
            conf["resnapshot"] = [body.table]
        started = _airflow_api(
            request, "POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf}
        )
        run_id = str(started["dag_run_id"])
        _state().record_audit(
            actor=user.get_name(), action="resync", dag_id=dag_id, run_id=run_id, detail=conf
        )
        return ActionResult(dag_id=dag_id, run_id=run_id, action="resync")

    @app.post("/api/dags/{dag_id}/runs/{run_id}/retry-failed", summary="Run the failed tables of a run again")
    def retry_failed(dag_id: str, run_id: str, request: Request, user: UserDep) -> ActionResult:
        if not _can(user, dag_id, "POST", "RUN"):
            raise HTTPException(status_code=403, detail=f"you may not run DAG {dag_id}")
        with _reading() as reader:
            view = _run_or_404(reader, dag_id, _latest(run_id))
        failed = [t["table"] for t in view["tables"] if t["status"] == "failed"]
        if not failed:
            raise HTTPException(status_code=409, detail=f"run {view['run_id']} has no failed table")
        _airflow_api(
            request,
            "POST",
            f"dags/{dag_id}/clearTaskInstances",
            {
                "dag_run_id": view["run_id"],
                "only_failed": True,
                "include_downstream": True,
                "reset_dag_runs": True,
                "dry_run": False,
            },
        )
        _state().record_audit(
            actor=user.get_name(),
            action="retry_failed",
            dag_id=dag_id,
            run_id=view["run_id"],
            detail={"tables": failed},
        )
        return ActionResult(dag_id=dag_id, run_id=view["run_id"], action="retry_failed")

    return app


async def _events(request: Request, dag_id: str, run_id: str | None) -> AsyncIterator[str]:
    """``event: run`` with the run's view whenever it changes; a comment now and then keeps proxies open."""
    reader = await asyncio.to_thread(HeldConnection, _state())
    try:
        last = ""
        quiet = 0.0
        while not await request.is_disconnected():
            view = await asyncio.to_thread(_run_view, reader, dag_id, run_id)
            payload = None if view is None else json.dumps(view, sort_keys=True)
            if payload is not None and payload != last:
                last, quiet = payload, 0.0
                yield f"event: run\ndata: {payload}\n\n"
            if quiet >= STREAM_KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_SECONDS)
            quiet += STREAM_POLL_SECONDS
    finally:
        await asyncio.to_thread(reader.close)
