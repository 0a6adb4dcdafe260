"""Where the local stack lives and which ports it uses; every value can be set from the environment.

Two stacks on one machine (a demo and the test suite, or two developers) differ by
``DTAAS_STACK_NAME`` and ``DTAAS_PORT_BASE`` (and ``DTAAS_REDIS_DB``); nothing else is shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _port(name: str, base: int, offset: int) -> int:
    return int(os.environ.get(name) or base + offset)


@dataclass(frozen=True)
class StackConfig:
    name: str
    root: Path
    state_dir: Path
    api_port: int
    mssql_port: int
    snowflake_port: int
    s3_port: int
    worker_log_port: int
    trigger_log_port: int
    worker2_log_port: int
    pg_host: str
    pg_port: int
    pg_user: str
    redis_host: str
    redis_port: int
    redis_db: int

    @classmethod
    def from_env(cls) -> StackConfig:
        name = os.environ.get("DTAAS_STACK_NAME", "dtaas")
        if not name.replace("_", "").isalnum():
            raise ValueError(f"DTAAS_STACK_NAME={name!r}: use letters, digits and '_' only")
        base = int(os.environ.get("DTAAS_PORT_BASE", "28000"))
        root = REPO_ROOT
        return cls(
            name=name,
            root=root,
            state_dir=Path(os.environ.get("DTAAS_STACK_DIR") or root / ".stack" / name),
            api_port=_port("DTAAS_API_PORT", base, 80),
            mssql_port=_port("DTAAS_MSSQL_PORT", base, 33),
            snowflake_port=_port("DTAAS_SNOWFLAKE_PORT", base, 43),
            s3_port=_port("DTAAS_S3_PORT", base, 90),
            worker_log_port=_port("DTAAS_WORKER_LOG_PORT", base, 93),
            trigger_log_port=_port("DTAAS_TRIGGER_LOG_PORT", base, 94),
            worker2_log_port=_port("DTAAS_WORKER2_LOG_PORT", base, 95),
            pg_host=os.environ.get("DTAAS_PG_HOST", "127.0.0.1"),
            pg_port=int(os.environ.get("DTAAS_PG_PORT", "5432")),
            pg_user=os.environ.get("DTAAS_PG_USER", "postgres"),
            redis_host=os.environ.get("DTAAS_REDIS_HOST", "127.0.0.1"),
            redis_port=int(os.environ.get("DTAAS_REDIS_PORT", "6379")),
            redis_db=int(os.environ.get("DTAAS_REDIS_DB", "0")),
        )

    @property
    def airflow_db(self) -> str:
        return f"{self.name}_airflow"

    @property
    def state_db(self) -> str:
        return f"{self.name}_state"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def lineage_events(self) -> Path:
        """The stack's OpenLineage events, one JSON line each (the file transport appends to it)."""
        return self.logs_dir / "openlineage.jsonl"

    @property
    def failpoints_dir(self) -> Path:
        """Where the fault-injection tests arm failpoints (``airflow_provider_dtaas.failpoints``)."""
        return self.state_dir / "failpoints"

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "certs"

    @property
    def ca_bundle(self) -> Path:
        return self.certs_dir / "ca-bundle.pem"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def bin_dir(self) -> Path:
        return self.root / ".venv" / "bin"
