"""Airflow 3 on the CeleryExecutor: environment, metadata DB, connections, and the five components."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import requests

from devstack import procs
from devstack.config import StackConfig
from devstack.connections import connections

# two Celery workers, as a deployment has: a task retried after its worker died runs on the other
WORKERS = ("celery-worker", "celery-worker-2")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
WORKER_CONCURRENCY = 4
ADMIN_USER = "admin"
# the progress view's permission tests sign in as each: user name -> SimpleAuthManager role
USERS = {ADMIN_USER: "admin", "operator": "op", "viewer": "viewer"}


def airflow_env(cfg: StackConfig, secrets: dict[str, str]) -> dict[str, str]:
    pg = f"{cfg.pg_user}@{cfg.pg_host}:{cfg.pg_port}/{cfg.airflow_db}"
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRFLOW_CONN_"))}
    return {
        **keep,
        "PATH": f"{cfg.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(cfg.root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(cfg.root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cfg.api_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.airflow_home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{cfg.redis_host}:{cfg.redis_port}/{cfg.redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__API__BASE_URL": cfg.api_url,
        "AIRFLOW__API__PORT": str(cfg.api_port),
        "AIRFLOW__API__SECRET_KEY": secrets["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cfg.worker_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(cfg.trigger_log_port),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # a task whose worker died is failed (and retried) after 30 s without a heartbeat, not 300 s
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # the fault-injection tests arm failpoints here; nothing is armed unless a test writes a file
        "DTAAS_FAILPOINTS": str(cfg.failpoints_dir),
        # OpenLineage events of every DAG run and task, appended as JSON lines to a file of the stack
        # (logs/openlineage.jsonl); a real deployment points the transport at its lineage backend
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(cfg.lineage_events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": cfg.name,
        "REQUESTS_CA_BUNDLE": str(cfg.ca_bundle),
    }


def prepare(cfg: StackConfig, secrets: dict[str, str], env: dict[str, str]) -> None:
    """Migrate the metadata DB, write the admin password and load the connections."""
    cfg.airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = cfg.airflow_home / "passwords.json"
    fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({user: secrets[f"{user}_password"] for user in USERS}, handle)
    _airflow(cfg, env, "db", "migrate")
    conn_file = cfg.state_dir / "connections.json"
    fd = os.open(conn_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(connections(cfg, secrets), handle)
    try:
        _airflow(cfg, env, "connections", "import", "--overwrite", str(conn_file))
    finally:
        conn_file.unlink(missing_ok=True)


def start(cfg: StackConfig, env: dict[str, str]) -> None:
    for name in COMPONENTS:
        start_component(cfg, env, name)


def start_component(cfg: StackConfig, env: dict[str, str], name: str) -> None:
    procs.start(
        name,
        _command(cfg, name),
        env=_component_env(cfg, env, name),
        pids_dir=cfg.pids_dir,
        logs_dir=cfg.logs_dir,
        cwd=cfg.root,
    )


def restart_component(cfg: StackConfig, env: dict[str, str], name: str, *, kill: bool = False) -> None:
    """Stop one component (with ``kill``: SIGKILL its whole process group, tasks included, as a lost
    host would) and start it again; the fault-injection tests use it."""
    procs.stop(name, cfg.pids_dir, kill=kill)
    start_component(cfg, env, name)


def _component_env(cfg: StackConfig, env: dict[str, str], name: str) -> dict[str, str]:
    if name == "celery-worker-2":  # its own log server port: both workers share the host
        return {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cfg.worker2_log_port)}
    return env


def _command(cfg: StackConfig, name: str) -> list[str]:
    airflow = str(cfg.bin_dir / "airflow")
    if name in WORKERS:
        number = WORKERS.index(name) + 1
        return [
            airflow,
            "celery",
            "worker",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--celery-hostname",
            f"{cfg.name}-worker{number}@%h",
        ]
    if name == "api-server":
        return [airflow, "api-server", "--host", "127.0.0.1", "--port", str(cfg.api_port), "--workers", "1"]
    return [airflow, name]


def wait_healthy(cfg: StackConfig, timeout: float = 180) -> None:
    """Wait until the api-server answers and the scheduler, dag-processor and triggerer beat."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for name in COMPONENTS:
            if not procs.is_running(name, cfg.pids_dir):
                raise RuntimeError(f"Airflow {name} exited; see {cfg.logs_dir / (name + '.log')}")
        try:
            health = requests.get(f"{cfg.api_url}/api/v2/monitor/health", timeout=5).json()
            states = {k: v.get("status") for k, v in health.items() if isinstance(v, dict)}
            last = json.dumps(states)
            wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            if all(states.get(k) == "healthy" for k in wanted if k in states):
                if _worker_ready(cfg):
                    return
                last = "celery worker not ready"
        except (requests.RequestException, ValueError):
            last = "api-server not answering yet"
        time.sleep(1)
    raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s: {last}; logs in {cfg.logs_dir}")


def _worker_ready(cfg: StackConfig) -> bool:
    return all(worker_ready(cfg, name) for name in WORKERS)


def worker_ready(cfg: StackConfig, name: str) -> bool:
    log = _worker_log(cfg, name)
    return log.exists() and b" ready." in log.read_bytes()  # the log starts anew with each start


def _worker_log(cfg: StackConfig, name: str) -> Path:
    return cfg.logs_dir / f"{name}.log"


def _airflow(cfg: StackConfig, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(cfg.bin_dir / "airflow"), *args],
        env=env,
        cwd=cfg.root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def admin_password(cfg: StackConfig) -> str:
    return password(cfg, ADMIN_USER)


def password(cfg: StackConfig, user: str) -> str:
    return str(json.loads(Path(cfg.airflow_home / "passwords.json").read_text())[user])
