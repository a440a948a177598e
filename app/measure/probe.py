"""psutil snapshots of a worker's process tree, as data.

A snapshot lists every descendant of the worker with its role:

- `resource_tracker`: multiprocessing's semaphore/shared-memory tracker (one per worker);
- `forkserver`: the server the `forkserver` start method forks task processes from;
- `task`: a process that ran (or still runs) a timed-out call, zombies included;
- `other`: anything else (a shell a test started, say).

Under `forkserver` the task processes are children of the forkserver, i.e. grandchildren of
the worker, and the forkserver reaps them itself, which is why the lab takes two snapshots, and
between them a `Timeline`: the same tree, read from /proc every TIMELINE_INTERVAL_SECONDS, where
the moment a task process is reaped shows as a step.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import psutil

from ..kernel import defaults, procfs

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


HELPER_PACKAGES = ("multiprocessing", "multiprocess")


def _role(zombie: bool, ppid: int, cmdline: str, python: bool, root_pid: int) -> str:
    if zombie:
        # Only task processes die while the worker runs; a dead helper would be a bug worth seeing.
        return "task"
    # the standard library's helpers, or the same ones of `multiprocess` (wrapt-timeout-decorator's fork of it)
    if any(f"{m}.resource_tracker" in cmdline for m in HELPER_PACKAGES) and ppid == root_pid:
        return "resource_tracker"
    if any(f"{m}.forkserver" in cmdline for m in HELPER_PACKAGES):
        # Processes forked by the forkserver inherit its command line but not its parent.
        return "forkserver" if ppid == root_pid else "task"
    return "task" if python else "other"


def classify(proc: psutil.Process, root_pid: int) -> str:
    """Role of one descendant of `root_pid`."""
    try:
        status = proc.status()
        ppid = proc.ppid()
    except (psutil.Error, OSError):
        return "other"
    if status == psutil.STATUS_ZOMBIE:
        return _role(True, ppid, "", False, root_pid)
    cmdline = _cmdline(proc)
    return _role(False, ppid, cmdline, _is_python(proc, cmdline), root_pid)


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


# --- the tree over time: a Timeline ---------------------------------------------------------------
#
# psutil's snapshot reads every process's command line and CPU: a few milliseconds, too slow to
# see a reaping that takes one. A timeline look reads only /proc/<pid>/stat of the descendants,
# found through the kernel's children lists (procfs.descendants; all processes' stat where the
# kernel has no `children` file), and each process's command line once, to give it its role.


@dataclass(frozen=True)
class Seen:
    """One descendant at one look."""

    pid: int
    ppid: int
    state: str  # /proc state letter: R running, S sleeping, D disk, Z zombie, ...
    role: str
    start_time: int  # clock ticks since boot: with the pid, names the process
    cpu_seconds: float  # user + system (clock-tick resolution; final for a zombie)


def _children_file_works() -> bool:
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


_CHILDREN_FILE = _children_file_works()


def _descendants(root_pid: int) -> dict[int, list[str]]:
    """stat fields of every descendant of `root_pid`, by pid."""
    found: dict[int, list[str]] = {}
    if _CHILDREN_FILE:
        for pid in procfs.descendants(root_pid):
            fields = procfs.stat(pid)
            if fields is not None:
                found[pid] = fields
        return found
    everyone: dict[int, list[str]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = procfs.stat(int(name))
            if fields is not None:
                everyone[int(name)] = fields
    parents = {root_pid}
    while True:
        more = {pid for pid, f in everyone.items() if int(f[procfs.PPID]) in parents and pid not in found}
        if not more:
            return found
        for pid in more:
            found[pid] = everyone[pid]
        parents |= more


def _read_cmdline(pid: int) -> tuple[str, bool]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/comm") as f:
            name = f.read().strip()
    except OSError:
        return "", False
    return cmdline, "python" in name or "python" in cmdline or "celery" in cmdline


def tree(root: int | None = None, roles: dict | None = None) -> list[Seen]:
    """The descendants of `root` (default: this process) now, sorted by pid.

    `roles` caches each process's role by (pid, start time) between calls: a process's command
    line is read once, the first time it is seen alive."""
    root_pid = os.getpid() if root is None else root
    roles = {} if roles is None else roles
    out = []
    for pid, fields in _descendants(root_pid).items():
        state, ppid, start = fields[procfs.STATE], int(fields[procfs.PPID]), int(fields[procfs.STARTTIME])
        zombie = state in ("Z", "X")
        key = (pid, start)
        role = roles.get(key)
        if zombie:
            role = _role(True, ppid, "", False, root_pid)
        elif role is None:
            cmdline, python = _read_cmdline(pid)
            role = roles[key] = _role(False, ppid, cmdline, python, root_pid)
        out.append(Seen(pid, ppid, state, role, start, round(procfs.cpu_seconds(fields), 3)))
    return sorted(out, key=lambda p: p.pid)


class Timeline:
    """The worker's descendants, looked at every `interval` seconds after a call returned.

    Times are seconds after `origin` (time.monotonic()): the call's deadline for a timeout, its
    return for a call that finished in time (`origin_is` says which)."""

    FIELDS = ("pid", "ppid", "state", "role")

    def __init__(self, origin: float, origin_is: str, *, root: int | None = None,
                 interval: float = defaults.TIMELINE_INTERVAL_SECONDS):
        self.origin = origin
        self.origin_is = origin_is
        self.root = os.getpid() if root is None else root
        self.interval = interval
        self.samples: list[tuple[float, list[Seen]]] = []
        self._roles: dict = {}

    def sample(self) -> list[Seen]:
        """Look now."""
        at = time.monotonic()
        seen = tree(self.root, self._roles)
        self.samples.append((at, seen))
        return seen

    def tick(self) -> None:
        """Look if the last look is `interval` old (call it as often as you like)."""
        if not self.samples or time.monotonic() - self.samples[-1][0] >= self.interval:
            self.sample()

    def reaped(self, pids) -> tuple[float | None, float | None]:
        """The first look at which all of `pids` had left the tree, i.e. were reaped (seconds after
        the origin; None: one was still there at the last look), and the last look before it that
        still saw one (None: gone at the first look already). The reaping happened between the two."""
        pids = set(pids)
        if not pids or not self.samples:
            return None, None
        last_seen = None
        for at, procs in self.samples:
            if pids & {p.pid for p in procs}:
                last_seen = round(at - self.origin, 4)
            else:
                return round(at - self.origin, 4), last_seen
        return None, last_seen

    def as_dict(self) -> dict:
        """`samples`: the first look, every look at which the tree differed from the look before,
        and the last look (a tree holds until the next sample: the steps are all there); `looks`:
        how many looks were taken."""
        samples, previous = [], None
        for index, (at, procs) in enumerate(self.samples):
            rows = [[p.pid, p.ppid, p.state, p.role] for p in procs]
            if rows != previous or index == len(self.samples) - 1:
                samples.append({"t": round(at - self.origin, 4), "p": rows})
            previous = rows
        return {
            "origin": self.origin_is,
            "interval": self.interval,
            "looks": len(self.samples),
            "fields": list(self.FIELDS),
            "samples": samples,
        }


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


def thread_cpu(pid: int | None = None) -> dict[int, int]:
    """Every thread of `pid` (default: this process) and the CPU nanoseconds it has used."""
    pid = os.getpid() if pid is None else pid
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    return {int(tid): ns for tid in tids if (ns := _thread_ns(pid, tid)) is not None}


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
                 exclude_tids=(), interval: float = 0.01, busy_fraction: float = 0.1):
        import threading

        self.root = os.getpid() if root is None else root
        # the sampling thread itself, and any other of the lab's own threads (the leftover follower)
        self.exclude = frozenset({threading.get_native_id() if exclude_tid is None else exclude_tid,
                                  *(t for t in exclude_tids if t is not None)})
        self.task_pids = tuple(task_pids)
        self.returned = returned
        self.interval = interval
        self.busy_fraction = busy_fraction
        self.worker_ns = 0
        self.tasks_ns = 0
        self.task_ns: dict[int, int] = {pid: 0 for pid in self.task_pids}  # per task process
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
                self.task_ns[int(key)] += delta
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

    def task_cpu(self, pid: int) -> float:
        """CPU seconds one of the task processes burned in the samples so far."""
        return round(self.task_ns.get(pid, 0) / 1e9, 4)

    def until(self, end: float, tick=None) -> Quiet:
        """Sample every `interval` until time.monotonic() reaches `end` (at least once), calling
        `tick` (if given) after each sample."""
        while True:
            time.sleep(max(0.0, min(self.interval, end - time.monotonic())))
            self.sample()
            if tick is not None:
                tick()
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
