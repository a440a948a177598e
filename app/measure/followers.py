"""Follow a timed-out call's leftover processes to their end, by pid and start time.

The settle window (SETTLE_SECONDS after the call returned) is too short to see what a leftover
costs: under `fork` a timed-out child keeps running the query for seconds after the window has
closed. So every process a call started that is still there when control comes back is followed
here until it exits, or until the producer asks for the run's totals at its end
(`tasks.leftovers`, which calls `report`).

Following is by pid and the kernel's start time (app/kernel/procfs.py), never by walking the worker's
children: a leftover reparented to init (or to a subreaper), or one that outlives its forkserver,
is still the same process and is still followed. Each one is read every FOLLOW_INTERVAL_SECONDS
by one daemon thread per worker process:

- its CPU (user + system of the whole process, clock-tick resolution) is remembered at each look,
  so when it is reaped between two looks only the CPU of that last interval is missed;
- it has *ended* when it is a zombie (its CPU is final then) or gone;
- it is *gone* when /proc/<pid> no longer exists or names another process (the pid was reused):
  somebody reaped it (the worker's multiprocessing, the forkserver, init).

The thread exists only while something is followed and never takes the GIL for long (a few
small reads per look). Its native thread id is `FOLLOWER.tid()`: the task's CPU sampling leaves
it out of the worker's own CPU.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from ..kernel import defaults, procfs


@dataclass
class Followed:
    """One leftover process of one call."""

    run_id: str | None
    iteration: int
    pid: int
    start_time: int  # clock ticks since boot (procfs.STARTTIME): pid + start time name the process
    origin: float  # time.monotonic() of the call's deadline (or of its return, if it ended in time)
    cpu_start: float  # CPU seconds when control came back
    cpu_last: float
    state: str  # the last state read: R, S, D, Z, ... or "gone"
    ended_at: float | None = None  # time.monotonic() of the first look that saw it a zombie or gone
    gone_at: float | None = None  # time.monotonic() of the first look that saw it gone

    def look(self, now: float) -> bool:
        """Read it once; False once it is gone (nothing more to follow)."""
        if self.gone_at is not None:
            return False
        fields = procfs.stat(self.pid)
        if fields is None or int(fields[procfs.STARTTIME]) != self.start_time:
            self.gone_at = now
            self.state = "gone"
            if self.ended_at is None:
                self.ended_at = now
            return False
        self.state = fields[procfs.STATE]
        self.cpu_last = max(self.cpu_last, procfs.cpu_seconds(fields))
        if self.state in ("Z", "X") and self.ended_at is None:
            self.ended_at = now
        return True

    def as_dict(self, now: float) -> dict:
        def after(at: float | None) -> float | None:
            return None if at is None else round(at - self.origin, 3)

        return {
            "iteration": self.iteration,
            "pid": self.pid,
            "start_time": self.start_time,
            "cpu_to_end": round(self.cpu_last - self.cpu_start, 3),
            "running_at_end": self.ended_at is None,
            "ended_after": after(self.ended_at),
            "gone_after": after(self.gone_at),
            "state_at_end": self.state,
            "followed_for": after(now),
        }


class Follower:
    """The followed processes of this worker process, by run, and the thread that reads them."""

    def __init__(self, interval: float = defaults.FOLLOW_INTERVAL_SECONDS):
        self.interval = interval
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Followed] = []
        self._thread: threading.Thread | None = None

    def tid(self) -> int | None:
        """The follower thread's native id (None while it has not been started)."""
        thread = self._thread
        return None if thread is None else thread.native_id

    def follow(self, items: list[Followed]) -> None:
        if not items:
            return
        with self._cond:
            self._look(items)
            self._items.extend(items)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lab-leftover-follower", daemon=True)
                self._thread.start()
            self._cond.notify()

    def look(self, items: list[Followed]) -> None:
        """Look at `items` now, between the thread's looks (the task does, every 10 ms of its settle
        window: a leftover killed and reaped there is read right before it goes, as the window's CPU
        sampling reads it)."""
        if not items:
            return
        with self._cond:
            self._look(items)

    @staticmethod
    def _look(items: list[Followed]) -> None:
        now = time.monotonic()
        for item in items:
            item.look(now)

    def _loop(self) -> None:
        with self._cond:
            while True:
                live = [item for item in self._items if item.gone_at is None]
                if not live:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                for item in live:
                    item.look(now)
                self._cond.wait(self.interval)

    def report(self, run_id: str | None) -> list[dict]:
        """The run's followed processes, read once more now, and forgotten: the run has ended."""
        with self._cond:
            now = time.monotonic()
            mine = [item for item in self._items if item.run_id == run_id]
            for item in mine:
                item.look(now)
            self._items = [item for item in self._items if item.run_id != run_id]
            return [item.as_dict(now) for item in mine]


FOLLOWER = Follower()
# A child forked from the worker (the `fork` start method) inherits the list but not the thread.
os.register_at_fork(after_in_child=FOLLOWER._reset)
