"""The probe classifies real processes: forkserver, its tasks, the resource tracker, zombies, others."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import psutil
import pytest

from app.measure import probe


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def forkserver_task():
    ctx = multiprocessing.get_context("forkserver")
    proc = ctx.Process(target=_sleep, args=(30,), daemon=True)
    proc.start()
    yield proc
    proc.terminate()
    proc.join(5)


def _snapshot_where(predicate, timeout=10.0) -> probe.Snapshot:
    """The first snapshot of this process's tree for which `predicate` holds (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = probe.snapshot()
        if predicate(snap):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout}s; last snapshot: {snap.as_dict()}")


def test_forkserver_and_its_task_are_told_apart(forkserver_task):
    """A forkserver child of the worker is `forkserver`; the process it forked for a call is `task`."""
    snap = _snapshot_where(lambda s: s.by_role("forkserver") and s.tasks)
    (server,) = snap.by_role("forkserver")
    assert server.ppid == os.getpid()
    task = next(p for p in snap.tasks if p.pid == forkserver_task.pid)
    assert task.ppid == server.pid, f"expected the task under the forkserver, got {snap.as_dict()}"
    assert task.cpu_seconds is not None


def test_resource_tracker_is_recognised(forkserver_task):
    """Starting a forkserver also starts multiprocessing's resource tracker, which is not a task."""
    snap = _snapshot_where(lambda s: s.by_role("resource_tracker"))
    assert len(snap.by_role("resource_tracker")) == 1
    assert all(p.pid != forkserver_task.pid for p in snap.by_role("resource_tracker"))


def test_zombie_child_counts_as_task_and_zombie():
    """A child that exited and was not waited for is a zombie task, with no CPU reading."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        snap = _snapshot_where(lambda s: s.zombies)
        (zombie,) = [p for p in snap.processes if p.pid == pid]
        assert (zombie.role, zombie.status, zombie.cpu_seconds) == ("task", "zombie", None)
        assert snap.as_dict()["zombies"] == 1
    finally:
        os.waitpid(pid, 0)
    assert all(p.pid != pid for p in probe.snapshot().processes)


def test_non_python_child_is_other():
    """A child that is not a Python process (a shell `sleep`) is `other`, never a task."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        snap = _snapshot_where(lambda s: any(p.pid == child.pid for p in s.processes))
        assert next(p for p in snap.processes if p.pid == child.pid).role == "other"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_cpu_after_counts_only_growth_of_tasks():
    """cpu_after sums what task processes burned between two snapshots."""
    before = probe.Snapshot(1, 0.0, (probe.ProcInfo(10, 1, "running", "task", 1.0),))
    after = probe.Snapshot(
        1,
        1.0,
        (
            probe.ProcInfo(10, 1, "running", "task", 1.5),
            probe.ProcInfo(11, 1, "running", "task", 0.25),
            probe.ProcInfo(12, 1, "sleeping", "forkserver", 9.0),
        ),
    )
    assert probe.cpu_after(before, after) == 0.75


def test_resources_of_this_process():
    """Resources reads RSS, fds and threads of a live process."""
    res = probe.Resources.of()
    me = psutil.Process()
    assert res.threads == me.num_threads() and res.open_fds > 0 and res.rss_bytes > 0
