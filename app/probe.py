"""psutil snapshots of a worker's process tree, as data.

A snapshot lists every descendant of the worker with its role:

- `resource_tracker`: multiprocessing's semaphore/shared-memory tracker (one per worker);
- `forkserver`: the server the `forkserver` start method forks task processes from;
- `task`: a process that ran (or still runs) a timed-out call, zombies included;
- `other`: anything else (a shell a test started, say).

Under `forkserver` the task processes are children of the forkserver, i.e. grandchildren of
the worker, and the forkserver reaps them itself, which is why the lab takes two snapshots.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import psutil

ROLES = ("resource_tracker", "forkserver", "task", "other")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    status: str
    role: str
    cpu_seconds: float | None  # user + system; None for zombies and vanished processes

    @property
    def zombie(self) -> bool:
        return self.status == psutil.STATUS_ZOMBIE


@dataclass(frozen=True)
class Snapshot:
    root_pid: int
    at: float  # time.monotonic() when taken
    processes: tuple[ProcInfo, ...]

    @property
    def children(self) -> int:
        """All descendants, the way the article counts `children=`."""
        return len(self.processes)

    @property
    def zombies(self) -> int:
        return sum(p.zombie for p in self.processes)

    def by_role(self, role: str) -> tuple[ProcInfo, ...]:
        return tuple(p for p in self.processes if p.role == role)

    @property
    def tasks(self) -> tuple[ProcInfo, ...]:
        return self.by_role("task")

    def as_dict(self) -> dict:
        return {
            "children": self.children,
            "zombies": self.zombies,
            "roles": {role: len(self.by_role(role)) for role in ROLES},
            "processes": [asdict(p) for p in self.processes],
        }


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return ""


def _is_python(proc: psutil.Process, cmdline: str) -> bool:
    try:
        name = proc.name()
    except (psutil.Error, OSError):
        name = ""
    return "python" in name or "python" in cmdline or "celery" in cmdline


def classify(proc: psutil.Process, root_pid: int) -> str:
    """Role of one descendant of `root_pid`."""
    try:
        status = proc.status()
        ppid = proc.ppid()
    except (psutil.Error, OSError):
        return "other"
    if status == psutil.STATUS_ZOMBIE:
        # Only task processes die while the worker runs; a dead helper would be a bug worth seeing.
        return "task"
    cmdline = _cmdline(proc)
    if "multiprocessing.resource_tracker" in cmdline and ppid == root_pid:
        return "resource_tracker"
    if "multiprocessing.forkserver" in cmdline:
        # Processes forked by the forkserver inherit its command line but not its parent.
        return "forkserver" if ppid == root_pid else "task"
    return "task" if _is_python(proc, cmdline) else "other"


def snapshot(root: int | None = None) -> Snapshot:
    """All descendants of `root` (default: this process) with their roles."""
    root_pid = os.getpid() if root is None else root
    at = time.monotonic()
    try:
        descendants = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    infos: list[ProcInfo] = []
    for proc in descendants:
        role = classify(proc, root_pid)
        try:
            with proc.oneshot():
                status = proc.status()
                ppid = proc.ppid()
                cpu = None
                if status != psutil.STATUS_ZOMBIE:
                    times = proc.cpu_times()
                    cpu = round(times.user + times.system, 3)
        except (psutil.Error, OSError):
            continue  # exited between listing and reading: not there any more
        infos.append(ProcInfo(pid=proc.pid, ppid=ppid, status=status, role=role, cpu_seconds=cpu))
    return Snapshot(root_pid=root_pid, at=at, processes=tuple(sorted(infos, key=lambda p: p.pid)))


@dataclass(frozen=True)
class Resources:
    """What a leak would grow in the worker itself."""

    rss_bytes: int
    open_fds: int
    threads: int
    cpu_seconds: float

    @classmethod
    def of(cls, pid: int | None = None) -> "Resources":
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            return cls(
                rss_bytes=proc.memory_info().rss,
                open_fds=proc.num_fds(),
                threads=proc.num_threads(),
                cpu_seconds=round(times.user + times.system, 3),
            )


def cpu_after(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds task processes burned between two snapshots (processes in both)."""
    start = {p.pid: p.cpu_seconds for p in before.tasks if p.cpu_seconds is not None}
    burned = 0.0
    for p in after.tasks:
        if p.cpu_seconds is not None:
            burned += max(0.0, p.cpu_seconds - start.get(p.pid, 0.0))
    return round(burned, 3)
