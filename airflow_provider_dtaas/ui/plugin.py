"""The Airflow plugin of the progress view, registered by the package's ``airflow.plugins`` entry
point: installing the provider is enough, and nothing goes into the plugins folder (a copy there
would load it twice)."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_dtaas.ui.api import PREFIX, create_app


class DtaasProgressPlugin(AirflowPlugin):
    name = "dtaas"
    fastapi_apps: list[Any] = [{"app": create_app(), "url_prefix": PREFIX, "name": "DTaaS progress"}]
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
