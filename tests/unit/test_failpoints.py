"""Failpoints: off without the environment variable, each armed step fires once, and each action does
what the fault-injection tests rely on (a real SIGKILL, a real dropped connection, a real hold)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_dtaas import failpoints

HIT = "from airflow_provider_dtaas import failpoints; failpoints.hit('read.batch', 'dbo.t'); print('passed')"


def _hit_in_child(folder: Path | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"} | ({failpoints.ENV: str(folder)} if folder else {})
    return subprocess.run([sys.executable, "-c", HIT], env=env, capture_output=True, text=True, check=False)


def test_an_armed_kill_sigkills_the_process_once_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "read.batch@dbo.t").write_text("kill")
    first = _hit_in_child(tmp_path)
    assert first.returncode == -9
    assert "passed" not in first.stdout
    fired = (tmp_path / "read.batch@dbo.t.fired").read_text()
    assert fired.startswith("kill\npid ")
    again = _hit_in_child(tmp_path)  # the retry passes the step
    assert (again.returncode, again.stdout.strip()) == (0, "passed")


def test_without_the_environment_variable_nothing_fires(tmp_path: Path) -> None:
    (tmp_path / "read.batch@dbo.t").write_text("kill")
    result = _hit_in_child(None)
    assert (result.returncode, result.stdout.strip()) == (0, "passed")
    assert (tmp_path / "read.batch@dbo.t").exists()


def test_another_tables_step_does_not_fire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, str(tmp_path))
    (tmp_path / "read.batch@dbo.other").write_text("kill")
    failpoints.hit("read.batch", "dbo.t")
    assert (tmp_path / "read.batch@dbo.other").exists()


def test_drop_shuts_down_the_connections_to_the_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        peer, _ = server.accept()
        monkeypatch.setenv(failpoints.ENV, str(tmp_path))
        (tmp_path / "read.batch@dbo.t").write_text(f"drop {port}")
        failpoints.hit("read.batch", "dbo.t")
        assert peer.recv(10) == b""  # the server sees the connection end
        with pytest.raises(BrokenPipeError):  # the client's own socket is shut too
            client.sendall(b"x")
        client.close()
        peer.close()


def test_hold_waits_for_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, str(tmp_path))
    (tmp_path / "read.batch@dbo.t").write_text("hold")
    held = threading.Thread(target=failpoints.hit, args=("read.batch", "dbo.t"))
    held.start()
    time.sleep(0.5)
    assert held.is_alive()
    (tmp_path / "read.batch@dbo.t.release").touch()
    held.join(timeout=5)
    assert not held.is_alive()


def test_unknown_steps_and_actions_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, str(tmp_path))
    with pytest.raises(failpoints.UnknownFailpointError, match=r"'read\.batches' is not one of"):
        failpoints.hit("read.batches", "dbo.t")
    (tmp_path / "read.batch@dbo.t").write_text("explode")
    with pytest.raises(failpoints.UnknownFailpointError, match="unknown action 'explode'"):
        failpoints.hit("read.batch", "dbo.t")


def test_every_step_is_called_by_the_code() -> None:
    package = Path(failpoints.__file__).parent
    code = "".join(p.read_text() for p in package.rglob("*.py") if p.name != "failpoints.py")
    assert [p for p in failpoints.POINTS if f'failpoints.hit("{p}"' not in code] == []
