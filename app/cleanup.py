"""Reap what a timed-out call left behind: the article's fix, with psutil.

Only `task` processes are touched. The resource tracker and the forkserver are the worker's
own long-lived helpers; killing them would make the next call start new ones (or fail).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psutil

from .probe import snapshot


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


def reap_tasks(root: int | None = None, grace: float = 1.0) -> CleanupResult:
    """SIGTERM the live task processes under `root`, SIGKILL survivors, reap what is ours.

    Zombies that are our own children are reaped by waiting on them. Zombie grandchildren
    (tasks of the forkserver) are their parent's to reap; they count as `remaining` if the
    forkserver has not reaped them within the grace period.
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
    # wait_procs reaps our own children (waitpid) and polls the others until they are gone.
    _, alive = psutil.wait_procs(everyone, timeout=grace)

    killed = 0
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                killed += 1
        except psutil.NoSuchProcess:
            pass
    if alive:
        _, alive = psutil.wait_procs(alive, timeout=grace)

    remaining = len([p for p in snapshot(root).tasks])
    return CleanupResult(terminated=terminated, killed=killed, remaining=remaining)
