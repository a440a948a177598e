"""Ctrl-C to a real `scripts/lab quick`, `run` and `pools`: exit 130, nothing of the run left, its state record gone.

Each command runs in a terminal session of its own and gets SIGINT on its process group, as a
terminal's Ctrl-C sends it, once its state record names a worker whose log says it is ready. What is
left is read from the process table (the run's marker), not from the lab's own account.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import labtest
from labctl import paths, procs

READY_SECONDS = labtest.threshold("LAB_TEST_READY_SECONDS", 180)
CASES = {
    "quick": (["quick"], {"TARGET_QUEUES": "gil", "ITERATIONS": "100"}),
    "run": (["run"], {"TARGET_QUEUES": "gil,nogil", "ITERATIONS": "100"}),
    "pools": (["pools", "--builds", "gil", "--pools", "solo", "--mechanisms", "soft-limit"], {}),
}


def _ready_worker(state_path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        started = json.loads(state_path.read_text())["started"]
        logs = [Path(s["log"]) for s in started if s["name"].startswith("worker")]
        return any(log.exists() and " ready." in log.read_text(errors="replace") for log in logs)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    "quick", pytest.param("run", marks=pytest.mark.built), pytest.param("pools", marks=pytest.mark.built)])
def test_ctrl_c_stops_the_run_and_leaves_nothing(tmp_path, command):
    """SIGINT to the command's process group mid-run: it exits 130, no process of the run is left, no state record."""
    if command != "quick":
        labtest.built_python("gil")
    args, extra = CASES[command]
    run_id = f"ctrl-c-{command}-{uuid.uuid4().hex[:6]}"
    env = labtest.base_env(tmp_path, LAB_BROKER="filesystem", RUN_ID=run_id, **extra)
    state_path = paths.cache_root(env) / "run" / f"{run_id}.json"
    out = tmp_path / "lab.log"
    with open(out, "w") as log:
        lab = subprocess.Popen([str(labtest.REPO / "scripts" / "lab"), *args], env=env, cwd=labtest.REPO,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _ready_worker(state_path):
            assert lab.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        marked = procs.marked(run_id)
        assert marked, "the run's processes carry its marker"  # the probe below sees something

        os.killpg(lab.pid, signal.SIGINT)
        code = lab.wait(timeout=120)
        left = procs.marked(run_id)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    swept = procs.sweep(run_id)
    assert code == 130, out.read_text()
    assert left == [] and swept == [], {pid: procs.name(pid) for pid in left + swept}
    assert not state_path.exists(), out.read_text()
