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

from . import procfs

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


# --- CPU still being burned after the call returned -------------------------------------------------
#
# /proc/<pid>/task/<tid>/schedstat counts a thread's CPU time in nanoseconds (psutil's cpu_times
# comes in clock ticks of 10 ms, too coarse to see a thread wind down). Where the kernel has no
# schedstat, the ticks in /proc/<pid>/task/<tid>/stat are the fallback.

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _thread_ns(pid: int, tid: str) -> int | None:
    base = f"/proc/{pid}/task/{tid}"
    try:
        with open(f"{base}/schedstat") as f:
            return int(f.read().split()[0])
    except FileNotFoundError:
        if not os.path.exists(base):
            return None
    except (OSError, ValueError, IndexError):
        return None
    fields = procfs.stat(pid, tid)
    return None if fields is None else (int(fields[procfs.UTIME]) + int(fields[procfs.STIME])) * _TICK_NS


def runnable(pid: int, exclude_tids: frozenset[int] = frozenset()) -> bool:
    """Whether a thread of `pid` (other than `exclude_tids`) is running or waiting for a CPU.

    On a busy machine a process that wants the CPU may get little of it in 10 ms: its state,
    not only what it burned, says that it still has work."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        if int(tid) in exclude_tids:
            continue
        fields = procfs.stat(pid, tid)
        if fields is not None and fields[procfs.STATE] == "R":
            return True
    return False


def cpu_ns(pid: int, exclude_tids: frozenset[int] = frozenset()) -> int | None:
    """CPU nanoseconds of every thread of `pid` except `exclude_tids`; None when it is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        if int(tid) in exclude_tids:
            continue
        ns = _thread_ns(pid, tid)
        if ns is not None:
            total += ns
    return total


@dataclass(frozen=True)
class Quiet:
    """What burned CPU after control came back, and until when."""

    window: float  # seconds observed after control came back
    cpu_in_worker: float  # CPU seconds of the worker's other threads (e.g. DuckDB threads still running)
    cpu_in_tasks: float  # CPU seconds of the task processes that were there when control came back
    # Seconds from control coming back to the end of the last sample interval in which anything
    # above burned CPU (0.0 when nothing did); None when it was still busy at the end.
    quiet_after_return: float | None
    busy_at_end: bool
    interval: float  # sampling interval: the resolution of quiet_after_return

    @property
    def cpu_seconds(self) -> float:
        return round(self.cpu_in_worker + self.cpu_in_tasks, 4)

    def as_dict(self) -> dict:
        return {**asdict(self), "cpu_seconds": self.cpu_seconds}


class CpuWatch:
    """Sample the worker's other threads and the leftover task processes until a deadline.

    Started right after the timed-out call returned (`returned`, time.monotonic()). An interval
    counts as busy when the sources burned more than `busy_fraction` of one core during it, or
    when one of their threads is runnable at its end (wants a CPU it did not get).
    """

    def __init__(self, task_pids, returned: float, *, root: int | None = None, exclude_tid: int | None = None,
                 interval: float = 0.01, busy_fraction: float = 0.1):
        import threading

        self.root = os.getpid() if root is None else root
        self.exclude = frozenset({threading.get_native_id() if exclude_tid is None else exclude_tid})
        self.task_pids = tuple(task_pids)
        self.returned = returned
        self.interval = interval
        self.busy_fraction = busy_fraction
        self.worker_ns = 0
        self.tasks_ns = 0
        self.last_busy: float | None = None
        self.busy_now = False
        self._last_at, self._last = self._read()

    def _read(self) -> tuple[float, dict[str, int]]:
        values = {}
        worker = cpu_ns(self.root, self.exclude)
        if worker is not None:
            values["worker"] = worker
        for pid in self.task_pids:
            ns = cpu_ns(pid)
            if ns is not None:
                values[str(pid)] = ns
        return time.monotonic(), values

    def sample(self) -> None:
        """Take one sample now (e.g. right before killing the task processes)."""
        at, values = self._read()
        burned_worker = burned_tasks = 0
        for key, ns in values.items():
            delta = max(0, ns - self._last.get(key, ns))
            if key == "worker":
                burned_worker += delta
            else:
                burned_tasks += delta
        self.worker_ns += burned_worker
        self.tasks_ns += burned_tasks
        span = max(at - self._last_at, 1e-6)
        self.busy_now = (burned_worker + burned_tasks) > self.busy_fraction * span * 1e9 or any(
            runnable(pid) for pid in self.task_pids) or runnable(self.root, self.exclude)
        if self.busy_now:
            self.last_busy = at
        # a process that vanished keeps its last value, so it stops counting instead of going negative
        self._last = {**self._last, **values}
        self._last_at = at

    def until(self, end: float) -> Quiet:
        """Sample every `interval` until time.monotonic() reaches `end` (at least once)."""
        while True:
            time.sleep(max(0.0, min(self.interval, end - time.monotonic())))
            self.sample()
            if self._last_at >= end:
                break
        window = self._last_at - self.returned
        quiet = None if self.busy_now else (0.0 if self.last_busy is None else self.last_busy - self.returned)
        return Quiet(
            window=round(window, 4),
            cpu_in_worker=round(self.worker_ns / 1e9, 4),
            cpu_in_tasks=round(self.tasks_ns / 1e9, 4),
            quiet_after_return=None if quiet is None else round(quiet, 4),
            busy_at_end=self.busy_now,
            interval=self.interval,
        )
