"""What the test session left running, read from the process table.

Every process the session starts inherits SESSION_VAR (set in os.environ before any test runs), so
the guard sees this session's processes and no one else's: lab workers in sessions of their own,
RabbitMQ nodes and their helpers; children pytest forked itself are found by their ancestry.
conftest.py checks at the end of every test, module and the session; a scope's check ignores what
an enclosing scope already owned (and everything below it), which that scope's own check covers
when it ends.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

from app.kernel import procfs
from labctl import procs

SESSION_VAR = "LAB_TEST_SESSION"
os.environ.setdefault(SESSION_VAR, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")

# pytest's own multiprocessing helpers (one forkserver and one resource tracker per interpreter,
# started by tests that call the strategies in-process) end with pytest: not a test's leftover.
_OWN_HELPERS = (b"multiprocessing.forkserver", b"multiprocessing.resource_tracker")


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def session_processes() -> dict[int, int]:
    """{pid: parent pid} of every live (non-zombie) process of this session: those carrying its marker,
    and pytest's own descendants (a child forked without exec shows pytest's environment as it was at
    exec, before SESSION_VAR was set, so only its ancestry tells)."""
    needle = f"{SESSION_VAR}={os.environ[SESSION_VAR]}".encode()
    me, found = os.getpid(), {}
    ours = set(procfs.descendants(me))
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        fields = procfs.stat(pid)
        if fields is None or fields[procfs.STATE] == "Z":
            continue
        if pid not in ours and needle not in (procfs.environ(pid) or []):
            continue
        ppid = int(fields[procfs.PPID])
        if ppid == me and any(helper in _cmdline(pid) for helper in _OWN_HELPERS):
            continue
        found[pid] = ppid
    return found


def _ancestors(pid: int, table: dict[int, int]) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        pid = table.get(pid) or _ppid(pid)
    return out


def _ppid(pid: int) -> int:
    fields = procfs.stat(pid)
    return int(fields[procfs.PPID]) if fields else 0


def describe(pid: int) -> str:
    return _cmdline(pid).replace(b"\0", b" ").decode(errors="replace").strip()[:160] or f"pid {pid}"


def left_behind(owned: set[int]) -> dict[int, str]:
    """This session's processes that are neither in `owned` nor below one of them, described."""
    table = session_processes()
    return {pid: describe(pid) for pid in table if not (_ancestors(pid, table) & owned)}


def wait_left_behind(owned: set[int], grace: float) -> dict[int, str]:
    """left_behind, after giving what ends on its own `grace` seconds to do so."""
    deadline = time.monotonic() + grace
    while True:
        found = left_behind(owned)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def kill(pids, wait: float = 10.0) -> None:
    """SIGKILL each pid (checked against its start time, so a reused pid is never hit), reap our children,
    and wait until every one is gone."""
    started = {pid: st for pid in pids if (st := procs.start_time(pid)) is not None}
    for pid, st in started.items():
        if procs.alive(pid, st):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait
    while any(procs.alive(pid, st) for pid, st in started.items()) and time.monotonic() < deadline:
        for pid in started:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)
