"""Helpers for the reliability tests: real workers, producers and RabbitMQ nodes, stopped by pid.

Every process a test starts carries a `LAB_RUN_ID` marker of its own (`rel-<hex>`), so the
autouse leftover check, `procs.sweep` and `scripts/lab down` can find whatever survives.
Waits are bounded and end on real signals: a log line, a process exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import labtest
from app.kernel import procfs
from labctl import procs, rabbit

REPO = labtest.REPO
PYTHON = sys.executable  # the test venv: the lab's own requirements plus pytest


def run_id(prefix: str = "rel") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def closed_port() -> int:
    """A local port nothing listens on (bound and released: refused right away)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(run: str, **extra: str) -> dict[str, str]:
    """A clean environment for a worker or producer of run `run`."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON_GIL", "LAB_RUN_ID"))}
    out.pop("VIRTUAL_ENV", None)
    out.update({procs.MARKER: run, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
    out.update(extra)
    return out


def worker_argv(queue: str, name: str) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "app", "worker", "--pool=solo", "-Q", queue, "-n", f"{name}@rel",
            "--loglevel=INFO", "--without-gossip", "--without-mingle"]


def start_worker(folder: Path, name: str, queue: str, wenv: dict[str, str], ready: float = 90.0) -> procs.Started:
    """A real Celery worker (solo pool) in a session of its own, ready when its log says so."""
    started = procs.spawn(f"worker {name}", worker_argv(queue, name), {**wenv, "QUEUE": queue, "WORKER_NAME": name},
                          folder / f"worker-{name}.log", cwd=REPO)
    procs.wait_for_line(started, [" ready."], timeout=ready)
    return started


def wait_for(log: str | Path, needle: str, timeout: float, proc: procs.Started | None = None) -> str:
    """Wait until `needle` shows up in `log`; fail with the log's tail after `timeout`."""
    deadline = time.monotonic() + timeout
    path = Path(log)
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        if proc is not None and not procs.alive(proc.pid, proc.started):
            raise AssertionError(f"{proc.name} exited before {needle!r}:\n{procs.tail(text, 30)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} in {path.name} after {timeout:.0f}s:\n{procs.tail(text, 30)}")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def kill9(started: procs.Started) -> None:
    """SIGKILL the process alone (not its group), as a crash would, and reap it."""
    os.kill(started.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.alive(started.pid, started.started) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.waitpid(started.pid, 0)
    except ChildProcessError:
        pass


class Node:
    """A private RabbitMQ node this test owns: it can be killed and restarted on the same port."""

    def __init__(self, folder: Path, run: str):
        self.folder, self.run = folder, run
        self.started, self.url = rabbit.start(folder / "rabbitmq", os.environ, run)
        # the exact environment (ports, node name, data folder) to start it again with
        raw = procfs.environ(self.started.pid)
        self.node_env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        self.restarts = 0

    def kill(self) -> None:
        """SIGKILL the node's whole process group: no clean shutdown."""
        procs.stop(self.started, grace=0.0, sig=signal.SIGKILL)

    def restart(self, timeout: float = 120.0) -> float:
        """Start it again with the same ports and data; returns how long that took."""
        self.restarts += 1
        start = time.monotonic()
        self.started = procs.spawn("rabbitmq", [rabbit.SERVER], self.node_env,
                                   self.folder / "rabbitmq" / f"rabbitmq-{self.restarts}.log", cwd=self.folder)
        procs.wait_for_line(self.started, ["Server startup complete"], timeout=timeout)
        return time.monotonic() - start

    def stop(self) -> None:
        procs.stop(self.started)


# How long a process of the run may take to end after what started it was stopped (a SIGKILLed
# group member not reaped yet, a RabbitMQ helper): the leftover check's own grace (tests/conftest.py).
LEFTOVER_GRACE = labtest.threshold("LAB_TEST_LEFTOVER_GRACE", 3.0)


def leftovers(run: str, grace: float = LEFTOVER_GRACE) -> dict[int, str]:
    """The live processes carrying `run`'s marker (the process table), once they had `grace` seconds to end: {pid: name}."""
    deadline = time.monotonic() + grace
    while True:
        left = {pid: name for pid, name in labtest.marked_processes().items() if procs.run_of(pid) == run}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def sweep(run: str) -> dict[int, str]:
    """procs.sweep(run), with the names of what it had to stop (read before it stops them)."""
    names = {pid: procs.name(pid) for pid in procs.marked(run)}
    return {pid: names.get(pid, "?") for pid in procs.sweep(run)}


def stop_run(run: str, *started: procs.Started) -> dict[int, str]:
    """Stop what a test started, by pid (workers first); then look at what still carries its marker, and only then sweep it.

    Returns what was still running ({pid: name}): the test asserts it is empty (or only what it
    expects, e.g. a RabbitMQ node's epmd), so a sweep never hides a process left behind.
    """
    for s in started:
        procs.stop(s, grace=10.0)
    left = leftovers(run)
    swept = sweep(run)
    return {**left, **swept}


def one_line(stderr: str) -> str:
    """The single non-empty stderr line of a bad-input exit (asserts there is exactly one)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def run_producer(penv: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "producer", *args], env=penv, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def ctl(broker, *args: str, timeout: float = 60) -> str:
    """rabbitmqctl against the session's private node (the `rabbitmq` fixture)."""
    cmd = [str(Path(rabbit.SERVER).with_name("rabbitmqctl")), "-q", "-n", f"lab-{broker.run_id}@localhost", *args]
    return subprocess.run(cmd, env=broker.ctl_env(), capture_output=True, text=True, timeout=timeout,
                          check=True).stdout


class VHost:
    """A virtual host of its own on the session's node: no other test's messages, removed after."""

    def __init__(self, broker, name: str):
        self.broker, self.name = broker, name
        ctl(broker, "add_vhost", name)
        ctl(broker, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        self.url = broker.url.rstrip("/") + "/" + name

    def queues(self) -> dict[str, int]:
        """Messages (ready + unacked) per queue in this vhost."""
        out = {}
        for line in ctl(self.broker, "list_queues", "-p", self.name, "name", "messages").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1])
        return out

    def delete(self) -> None:
        ctl(self.broker, "delete_vhost", self.name)
