"""The Airflow connections of the local stack, one definition for the stack, the tests and the demo."""

from __future__ import annotations

import json
from typing import Any

from devstack.config import StackConfig

SAMPLE_DATABASE = "dtaas_sample"
SNOWFLAKE_DATABASE = "DTAAS"
DEMO_BUCKET = "dtaas-demo"
# moto accepts any key pair; these are the documented test credentials, not secrets.
_MOTO_KEY_ID = "testing"
_MOTO_SECRET = "testing"


def connections(cfg: StackConfig, secrets: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "dtaas_mssql": {
            "conn_type": "mssql",
            "description": "SQL Server (local TDS double) with the sample database",
            "host": "127.0.0.1",
            "port": cfg.mssql_port,
            "login": "sa",
            "password": secrets["mssql_password"],
            "schema": SAMPLE_DATABASE,
            "extra": {"tds_version": "7.4", "login_timeout": 10, "timeout": 600},
        },
        "dtaas_s3": {
            "conn_type": "aws",
            "description": "S3 (local moto server)",
            "login": _MOTO_KEY_ID,
            "password": _MOTO_SECRET,
            "extra": {"endpoint_url": cfg.s3_url, "region_name": "us-east-1"},
        },
        "dtaas_snowflake": {
            "conn_type": "snowflake",
            "description": "Snowflake (local fakesnow server over HTTPS)",
            "login": "dtaas",
            "password": secrets["snowflake_password"],
            "schema": "SAMPLE",
            "extra": {
                "account": "fakesnow",
                "host": "localhost",
                "port": cfg.snowflake_port,
                "protocol": "https",
                "database": SNOWFLAKE_DATABASE,
                "warehouse": "DTAAS_WH",
                "network_timeout": 60,
                "login_timeout": 15,
            },
        },
        "dtaas_state": {
            "conn_type": "postgres",
            "description": "DTaaS state store",
            "host": cfg.pg_host,
            "port": cfg.pg_port,
            "login": cfg.pg_user,
            "schema": cfg.state_db,
        },
    }


def as_env(conns: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables (JSON form) for processes outside the Airflow stack."""
    env = {}
    for conn_id, conn in conns.items():
        body = {k: v for k, v in conn.items() if k != "description"}
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(body)
    return env
