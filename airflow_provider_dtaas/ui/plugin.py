"""The Airflow plugin of the progress view, registered by the package's ``airflow.plugins`` entry
point: installing the provider is enough, and nothing goes into the plugins folder (a copy there
would load it twice)."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

PREFIX = "/dtaas"


class LazyApp:
    """The progress API as an ASGI app that is built at its first request.

    Airflow loads every plugin in task processes too (a DB-API hook's lineage does), and building the
    FastAPI app there imports FastAPI and the api-server's security for nothing: about a second and
    tens of MB in every task. Only the api-server ever calls this.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_provider_dtaas.ui.api import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class DtaasProgressPlugin(AirflowPlugin):
    name = "dtaas"
    fastapi_apps: list[Any] = [{"app": LazyApp(), "url_prefix": PREFIX, "name": "DTaaS progress"}]
    external_views: list[Any] = [
        {
            "name": "Transfers",
            "href": f"{PREFIX}/",
            "destination": "nav",
            "url_route": "dtaas-transfers",
            "icon": f"{PREFIX}/static/icon.svg",
        },
        {
            "name": "Transfers",
            "href": f"{PREFIX}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "dtaas-dag",
        },
        {
            "name": "Transfers",
            "href": f"{PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "dtaas-run",
        },
    ]
