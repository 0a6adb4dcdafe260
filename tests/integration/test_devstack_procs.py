"""`make down` stops exactly what the stack started: process groups recorded with their start time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devstack import procs

SLEEPER = [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"]


def test_stop_kills_the_whole_group_and_nothing_else(tmp_path: Path) -> None:
    pids, logs = tmp_path / "pids", tmp_path / "logs"
    ours = procs.start("ours", SLEEPER, env=dict(os.environ), pids_dir=pids, logs_dir=logs, cwd=tmp_path)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert procs.is_running("ours", pids)
        assert procs.stop("ours", pids)
        assert not procs.is_running("ours", pids)
        assert not procs._group_alive(ours)  # the child 'sleep' of the group is gone too
        assert bystander.poll() is None  # an unrelated process group is untouched
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stale_record_never_signals_a_reused_pid(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # a record naming a live pid with another start time: that pid now belongs to someone else
        (pids / "old.json").write_text(json.dumps({"pid": bystander.pid, "start": "1", "argv": []}))
        assert not procs.is_running("old", pids)
        assert procs.stop("old", pids) is False
        assert bystander.poll() is None
        assert not (pids / "old.json").exists()
    finally:
        bystander.kill()
        bystander.wait()
