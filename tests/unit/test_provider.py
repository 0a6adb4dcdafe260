from __future__ import annotations

import importlib

from airflow_provider_dtaas import get_provider_info


def test_airflow_discovers_the_provider_through_its_entry_point() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert "airflow-provider-dtaas" in providers
    assert providers["airflow-provider-dtaas"].version == get_provider_info()["versions"][0]


def test_every_module_the_provider_declares_imports() -> None:
    info = get_provider_info()
    entries = [*info["hooks"], *info["operators"]]
    modules = [module for entry in entries for module in entry["python-modules"]]
    for module in modules:
        importlib.import_module(module)
