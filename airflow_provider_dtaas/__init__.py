"""DTaaS: replicate SQL Server tables into Snowflake and Amazon S3 with Apache Airflow 3."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-dtaas",
        "name": "DTaaS",
        "description": "Replicate SQL Server tables into Snowflake and Amazon S3 (full load and CDC).",
        "versions": [__version__],
        "hooks": [
            {
                "integration-name": "DTaaS",
                "python-modules": [
                    "airflow_provider_dtaas.hooks.mssql",
                    "airflow_provider_dtaas.hooks.postgres_source",
                    "airflow_provider_dtaas.hooks.snowflake",
                    "airflow_provider_dtaas.hooks.s3",
                    "airflow_provider_dtaas.hooks.state",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "DTaaS",
                "python-modules": ["airflow_provider_dtaas.transfers.full_load"],
            }
        ],
        "cli": ["airflow_provider_dtaas.airflow_cli.get_cli_commands"],
        "integrations": [
            {
                "integration-name": "DTaaS",
                "external-doc-url": "https://example.invalid/dtaas",
                "tags": ["software"],
            }
        ],
    }
