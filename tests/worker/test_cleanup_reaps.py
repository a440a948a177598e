"""reap_tasks stops real task processes, killing the ones that ignore SIGTERM, and nothing else."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import time

from app.measure import probe
from app.cleanup import reap_tasks


def _sleep_forever() -> None:
    while True:
        time.sleep(0.1)


def _ignore_sigterm_forever(ready) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    while True:
        time.sleep(0.1)


def _end(*children) -> None:
    """This test's own children end here, whatever reap_tasks did: a SIGTERM-ignoring daemonic child
    left alive would make multiprocessing's exit hook wait for it forever."""
    for child in children:
        child.kill()
        child.join(5)


def test_sigterm_ignoring_child_ends_up_killed():
    """One child dies on SIGTERM, one ignores it and is SIGKILLed; nothing remains."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    polite = ctx.Process(target=_sleep_forever, daemon=True)
    stubborn = ctx.Process(target=_ignore_sigterm_forever, args=(ready,), daemon=True)
    polite.start()
    stubborn.start()
    try:
        assert ready.wait(10)

        result = reap_tasks(grace=0.5)

        assert (result.terminated, result.killed, result.remaining) == (2, 1, 0), result
        assert result.log_line() == "cleanup terminated=2 killed=1 remaining=0"
        assert not probe.snapshot().tasks
    finally:
        _end(polite, stubborn)


def test_helpers_and_other_processes_are_left_alone():
    """The resource tracker, the forkserver and non-Python children survive a cleanup."""
    ctx = multiprocessing.get_context("forkserver")
    task = ctx.Process(target=_sleep_forever, daemon=True)
    task.start()
    other = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not probe.snapshot().by_role("forkserver"):
            time.sleep(0.05)
        helpers = {p.pid for p in probe.snapshot().processes if p.role in ("forkserver", "resource_tracker")}
        assert helpers

        result = reap_tasks(grace=0.5)

        after = probe.snapshot()
        assert result.terminated == 1 and result.remaining == 0, result
        assert helpers <= {p.pid for p in after.processes}
        assert other.poll() is None, "a non-task child was touched"
    finally:
        _end(task)
        other.kill()
        other.wait()
