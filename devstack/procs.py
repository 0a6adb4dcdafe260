"""Background processes of the stack: each in its own process group, recorded in a pid file.

``stop`` signals only the groups this stack recorded, and only while the recorded process is
still the one it started (same start time), so nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19]  # starttime, field 22 of stat


def start(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], pids_dir: Path, logs_dir: Path, cwd: Path
) -> int:
    pids_dir.mkdir(parents=True, exist_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    if is_running(name, pids_dir):
        return int(json.loads((pids_dir / f"{name}.json").read_text())["pid"])
    log = open(logs_dir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    record = {"pid": process.pid, "start": _start_ticks(process.pid), "argv": list(argv)[:3]}
    (pids_dir / f"{name}.json").write_text(json.dumps(record))
    return process.pid


def is_running(name: str, pids_dir: Path) -> bool:
    path = pids_dir / f"{name}.json"
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    return _start_ticks(int(record["pid"])) == record["start"] and not _is_zombie(int(record["pid"]))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop(name: str, pids_dir: Path, *, timeout: float = 20.0, kill: bool = False) -> bool:
    """Stop one recorded process group (``kill``: at once, with SIGKILL); return True if something
    was stopped."""
    path = pids_dir / f"{name}.json"
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    pid = int(record["pid"])
    stopped = False
    if _start_ticks(pid) == record["start"]:
        stopped = True
        if kill:  # as a lost host: the descendants that left the group (task processes) die too
            _kill_descendants(pid)
        _signal_group(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return stopped


def recorded(pids_dir: Path) -> list[str]:
    if not pids_dir.is_dir():
        return []
    return sorted(p.stem for p in pids_dir.glob("*.json"))


def _kill_descendants(pid: int) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # a group whose only members are zombies is gone for our purposes
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                return True
    return False


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 60.0, name: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{name or 'service'} did not listen on {host}:{port} within {timeout:.0f} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
