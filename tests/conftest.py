"""Fixtures every part of the suite shares. Helpers live in labtest.py."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import labtest
from app import procfs
from labctl import procs, rabbit


# Every process this session starts inherits this variable, so the leftover check below looks at
# (and stops) only this session's processes, never those of another session or run on the machine.
SESSION_VAR = "LAB_TEST_SESSION"
os.environ.setdefault(SESSION_VAR, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _session_marked() -> dict[int, str]:
    needle = f"{SESSION_VAR}={os.environ[SESSION_VAR]}".encode()
    out = {}
    for pid, name in labtest.marked_processes().items():
        if needle in (procfs.environ(pid) or []):
            out[pid] = name
    return out


# A process that ends on its own this soon after the test is not left behind: RabbitMQ nodes run
# short helpers (`sh -c df ...` for the disk monitor, `erl` for a stop), which inherit the marker.
LEFTOVER_GRACE = labtest.threshold("LAB_TEST_LEFTOVER_GRACE", 3.0)


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """After every test, no process carrying a lab marker may be running that was not there before."""
    before = set(_session_marked())
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE
    while True:
        leftovers = {pid: name for pid, name in _session_marked().items() if pid not in before}
        if not leftovers or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if leftovers:
        for pid in leftovers:  # stop them so one failure does not cascade, then fail
            procs.stop(procs.Started("leftover", pid, procs.start_time(pid), ""), grace=2.0)
        pytest.fail(f"processes left running by this test: {leftovers}")


class Broker:
    """A private RabbitMQ node (labctl.rabbit) and a way to ask it about its queues."""

    def __init__(self, started: procs.Started, url: str, folder: Path, run_id: str):
        self.started, self.url, self.folder, self.run_id = started, url, folder, run_id

    def ctl_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HOME": str(self.folder), "RABBITMQ_NODENAME": f"lab-{self.run_id}@localhost"})
        env.update({k: v for k, v in _node_env(self.folder).items()})
        return env

    def queue_depths(self) -> dict[str, int]:
        """Messages ready in each queue, from rabbitmqctl."""
        import subprocess

        out = subprocess.run(
            # the real script next to rabbitmq-server: /usr/sbin/rabbitmqctl runs as the rabbitmq
            # user, whose HOME (and so Erlang cookie) is not this node's
            [str(Path(rabbit.SERVER).with_name("rabbitmqctl")), "-q", "-n", f"lab-{self.run_id}@localhost",
             "list_queues", "name", "messages"],
            env=self.ctl_env(), capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        return labtest.queue_depths(out)


def _node_env(folder: Path) -> dict[str, str]:
    env = {}
    for line in (folder / "node.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


@pytest.fixture(scope="session")
def rabbitmq():
    """A real RabbitMQ node for the session, stopped by pid at the end."""
    labtest.need(rabbit.available(), "rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    folder = Path(tempfile.mkdtemp(prefix="lab-test-rabbit-"))
    run_id = f"test-{os.getpid()}"
    started, url = rabbit.start(folder, os.environ, run_id)
    try:
        yield Broker(started, url, folder, run_id)
    finally:
        procs.stop(started)
        procs.sweep(run_id)
        shutil.rmtree(folder, ignore_errors=True)
