"""Reap what a timed-out call left behind: the article's fix, with psutil.

Only `task` processes are touched. The resource tracker and the forkserver are the worker's
own long-lived helpers; killing them would make the next call start new ones (or fail).
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import asdict, dataclass

import psutil

from .measure.probe import snapshot


@dataclass(frozen=True)
class CleanupResult:
    terminated: int  # task processes sent SIGTERM
    killed: int  # of those, still alive after the grace period and sent SIGKILL
    remaining: int  # task processes (zombies included) still there afterwards

    def as_dict(self) -> dict:
        return asdict(self)

    def log_line(self) -> str:
        return f"cleanup terminated={self.terminated} killed={self.killed} remaining={self.remaining}"


def _procs(pids) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return procs


def _wait(procs: list[psutil.Process], grace: float, tick) -> list[psutil.Process]:
    """Wait up to `grace` for `procs` to end, calling `tick` (if given) every 10 ms; returns the rest.

    Our own multiprocessing children are left for multiprocessing to reap (active_children()
    joins the finished ones). If psutil's waitpid took their exit status instead, multiprocessing
    would never see them end and would keep each Process, with the timed-out call's Queue pipes,
    for good: 2 open fds per timeout (bench/soak.py, docs/reliability.md). The others (e.g. the
    forkserver's children) are polled with psutil.
    """
    end = time.monotonic() + grace
    own = {p.pid for p in multiprocessing.active_children()}
    alive = procs
    while alive:
        if tick is not None:
            tick()
        running = {p.pid for p in multiprocessing.active_children()}
        mine = [p for p in alive if p.pid in own and p.pid in running]
        step = max(0.0, min(0.01, end - time.monotonic()))
        theirs = [p for p in alive if p.pid not in own]
        if theirs:
            _, theirs = psutil.wait_procs(theirs, timeout=step)
        elif mine:
            time.sleep(step)
        alive = mine + theirs
        if time.monotonic() >= end:
            break
    return alive


def reap_tasks(root: int | None = None, grace: float = 1.0, tick=None) -> CleanupResult:
    """SIGTERM the live task processes under `root`, SIGKILL survivors, reap what is ours.

    Zombies that are our own children are reaped by waiting on them. Zombie grandchildren
    (tasks of the forkserver) are their parent's to reap; they count as `remaining` if the
    forkserver has not reaped them within the grace period. `tick`, if given, is called about
    every 10 ms while waiting (the task samples the CPU the processes burn meanwhile).
    """
    tasks = snapshot(root).tasks
    live = _procs(p.pid for p in tasks if not p.zombie)
    everyone = _procs(p.pid for p in tasks)

    terminated = 0
    for proc in live:
        try:
            proc.terminate()
            terminated += 1
        except psutil.NoSuchProcess:
            pass
    alive = _wait(everyone, grace, tick)

    killed = 0
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                if tick is not None:
                    tick()  # last look at what it burned before it goes
                proc.kill()
                killed += 1
        except psutil.NoSuchProcess:
            pass
    if alive:
        _wait(alive, grace, tick)

    remaining = len([p for p in snapshot(root).tasks])
    return CleanupResult(terminated=terminated, killed=killed, remaining=remaining)
