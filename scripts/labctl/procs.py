"""Processes the host scripts start, and how they stop them: by pid, and only theirs.

Every process the lab starts gets `LAB_RUN_ID=<run>` in its environment. Children inherit it
(task processes, forkservers, epmd, ...), so even an orphan re-parented to init can be found
again by reading /proc/<pid>/environ: that is how `scripts/lab down` and the tests find what a
crashed run left behind, without ever touching a process the lab did not start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

from app.kernel import procfs, results_io

MARKER = "LAB_RUN_ID"


def start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), to detect pid reuse."""
    fields = procfs.stat(pid)
    return None if fields is None else int(fields[procfs.STARTTIME])


def state(pid: int) -> str | None:
    fields = procfs.stat(pid)
    return None if fields is None else fields[procfs.STATE]


def name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def alive(pid: int, started: int | None = None) -> bool:
    """Running (not a zombie) and, when `started` is given, still the same process."""
    st = state(pid)
    if st is None or st == "Z":
        return False
    return started is None or start_time(pid) == started


def marked(run_id: str | None = None) -> list[int]:
    """Live pids whose environment carries the lab's marker (for `run_id`, or any run)."""
    found = []
    needle = f"{MARKER}={run_id}".encode() if run_id else f"{MARKER}=".encode()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        items = procfs.environ(int(entry.name)) or []
        if any(item == needle or (not run_id and item.startswith(needle)) for item in items):
            if alive(int(entry.name)):
                found.append(int(entry.name))
    return sorted(found)


def parent(pid: int) -> int | None:
    fields = procfs.stat(pid)
    return None if fields is None else int(fields[procfs.PPID])


def run_of(pid: int) -> str | None:
    """The run id in `pid`'s marker, if it has one."""
    prefix = f"{MARKER}=".encode()
    for item in procfs.environ(pid) or []:
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def orphaned_runs() -> dict[str, list[int]]:
    """Runs nobody owns any more, with their live marked pids.

    A run is owned while one of its processes hangs off a live process outside the run (the
    `scripts/lab` that started it, a test, a shell). When that owner dies, or a worker dies and
    leaves its task processes, what is left is re-parented to init (pid 1) and its run is
    orphaned. (A child subreaper other than init would make an orphan look owned.)
    """
    runs: dict[str, list[int]] = {}
    for pid in marked():
        run = run_of(pid)
        if run:
            runs.setdefault(run, []).append(pid)
    orphaned = {}
    for run, pids in runs.items():
        members = set(pids)
        owned = any(p not in (None, 0, 1) and p not in members for p in map(parent, pids))
        if not owned:
            orphaned[run] = pids
    return orphaned


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    started: int | None
    log: str

    def as_dict(self) -> dict:
        return asdict(self)

    def output(self) -> str:
        """What the process wrote to its log so far ("" before it wrote anything)."""
        return Path(self.log).read_text(errors="replace") if Path(self.log).exists() else ""


def spawn(name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> Started:
    """Start `argv` in a session of its own (so its whole tree can be signalled), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Started(name=name, pid=proc.pid, started=start_time(proc.pid), log=str(log))


def wait_for_line(started: Started, needles: Iterable[str], timeout: float, poll: float = 0.2) -> str:
    """Wait until the log shows one of `needles`; raise with the log's tail if the process dies or time runs out."""
    needles = tuple(needles)
    deadline = time.monotonic() + timeout
    while True:
        text = started.output()
        for needle in needles:
            if needle in text:
                return needle
        if not alive(started.pid, started.started):
            _reap(started.pid)
            raise RuntimeError(f"{started.name} exited before it was ready:\n{tail(text)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{started.name} not ready after {timeout:.0f}s:\n{tail(text)}")
        time.sleep(poll)


def wait_exit(p: Started, timeout: float, watch: Started | None = None) -> int | None:
    """Wait for `p`, a child of this process, to exit: its exit status, or None if it was collected
    elsewhere (subprocess's own cleanup of Popen objects). TimeoutError after `timeout` seconds; with
    `watch` (the worker `p` talks to), RuntimeError as soon as that is gone, with how it ended and its log's end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(p.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            return os.waitstatus_to_exitcode(status)
        if watch is not None and not alive(watch.pid, watch.started):
            try:
                pid, status = os.waitpid(watch.pid, os.WNOHANG)
                how = exit_text(os.waitstatus_to_exitcode(status)) if pid else "exit status unknown"
            except ChildProcessError:
                how = "exit status unknown"
            raise RuntimeError(f"{watch.name} died before {p.name} was done ({how}); its log ends: "
                               + " | ".join(tail(watch.output(), 3).splitlines()))
        time.sleep(0.05)
    raise TimeoutError(f"{p.name} still running after {timeout:.0f}s")


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(pid: int, sig: int, leader_alive: bool = True) -> None:
    """Signal the session/group we created with start_new_session; without one, the leader itself,
    but only while it is known to be alive (a reaped leader's pid may be someone else's by now)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        if not leader_alive:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(started: Started, grace: float = 10.0, sig: int = signal.SIGTERM) -> str:
    """Signal the process (and its group), wait `grace`, SIGKILL what is left. Returns how it ended."""
    if not alive(started.pid, started.started):
        _reap(started.pid)
        # the leader died on its own; what it started in its group (fork leftovers) may still run
        _signal_group(started.pid, signal.SIGKILL, leader_alive=False)
        return "already gone"
    _signal_group(started.pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(started.pid)
        if not alive(started.pid, started.started):
            break
        time.sleep(0.1)
    else:
        _signal_group(started.pid, signal.SIGKILL)
        time.sleep(0.2)
        _reap(started.pid)
        return f"killed (still running {grace:.0f}s after SIGTERM)"
    # the leader is gone; make sure nothing of its group lingers
    _signal_group(started.pid, signal.SIGKILL, leader_alive=False)
    return "stopped"


def sweep(run_id: str, grace: float = 3.0) -> list[int]:
    """Terminate every live process marked with `run_id`; returns the pids it had to stop."""
    pids = marked(run_id)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        for p in pids:
            _reap(p)
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid)
    return pids


class StateFile:
    """What a run started, on disk, so `scripts/lab down` can stop it after a crash."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, data: dict) -> None:
        results_io.write_json(self.path, data)  # atomic: `down` never reads half a record

    def read(self) -> dict:
        return json.loads(self.path.read_text())

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def exit_text(code: int | None) -> str:
    """An exit status as a run's line says it: `exit 1`, `killed by signal 9`, `exit status unknown`."""
    if code is None:
        return "exit status unknown"
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"
