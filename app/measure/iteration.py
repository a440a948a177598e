"""What one call of `tasks.leak_demo` leaves behind, measured around it, and the record it returns.

The task calls these in order: `size_call` (how many rows, from the worker's calibration),
`Iteration()` before the call (the worker's resources and process tree), `after_call` once it
returned, `settle` at the end of the settle window, then `record`. In between:

- right after the call, a process-tree snapshot ("immediate") and a first look of the timeline
  (before the psutil snapshot, which is too slow to see a quick reaping); the call's own
  processes still there are handed to the follower (app/measure/followers.py), which reads them
  until they end (`tasks.leftovers` answers what they burned by the end of the run);
- the tree every TIMELINE_INTERVAL_SECONDS (`timeline`), CPU sampling of whatever is left (other
  worker threads, task processes) for SETTLE_SECONDS, a second snapshot then ("settled").
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from dataclasses import dataclass

from . import calibrate, probe
from .followers import FOLLOWER, Followed


@dataclass(frozen=True)
class Sizing:
    """How the call was sized: asked-for rows ("auto" or a count), the target duration of an
    auto-sized call, how long this worker expects `rows` to take, and its measured speed."""

    requested: int | str
    rows: int
    target: float
    expected: float
    calibration: calibrate.Calibration

    def as_dict(self) -> dict:
        return {"rows_requested": self.requested,
                "query_seconds": round(self.target, 3) if self.requested == "auto" else None,
                "expected_seconds": round(self.expected, 3), "calibration": self.calibration.as_dict()}


def size_call(rows: int | None, timeout: float, query_seconds: float | None, config) -> Sizing:
    """`rows=None` (DUCKDB_ROWS=auto): as many as this interpreter runs in the target time.

    Measured once per worker, before the first baseline: not part of any iteration."""
    calibration = calibrate.cached(config.duckdb_threads, config.calibration_dir, workload=config.workload)
    target = calibrate.target_seconds(timeout, config.settle_seconds, query_seconds)
    if config.workload != "duckdb":
        rows = None  # DUCKDB_ROWS sizes DuckDB's query; every other workload is sized by its own calibration
    requested = "auto" if rows is None else rows
    rows = calibration.rows_for(target) if rows is None else rows
    return Sizing(requested, rows, target, calibration.seconds_for(rows), calibration)


def started_children() -> set[int]:
    """The pids of the processes multiprocessing started here and has not reaped yet.

    Read from multiprocessing's own registry, not polled: active_children() would reap them and
    so change what the experiment measures. Under forkserver the pid is the real task process's."""
    children = getattr(multiprocessing.process, "_children", ())
    return {pid for pid in (getattr(p, "pid", None) for p in list(children)) if pid is not None}


class Iteration:
    """One call, measured: made right before it, told when it returned, settled at the end."""

    def __init__(self, run_id: str | None, iteration: int) -> None:
        self.run_id, self.iteration = run_id, iteration
        self.before = probe.Resources.of()
        self.baseline = probe.snapshot()
        self.started_before = started_children()
        self.threads_before = probe.thread_cpu()

    def after_call(self, outcome, timeout: float) -> probe.Snapshot:
        """Right after the call returned: the tree now ("immediate"); starts the timeline and the CPU watch."""
        self.returned, self.outcome, self.timeout = time.monotonic(), outcome, timeout
        # Threads the call started that are still there: a library that gave control back while its
        # thread runs on in the C call (func-timeout) has left it behind, where children= cannot see it.
        self.threads_at_return = {tid: ns for tid, ns in probe.thread_cpu().items() if tid not in self.threads_before}
        self.timed_out = outcome.outcome == "timeout"
        # The timeline's clock starts at the deadline (at the return, for a call that ended in time).
        from_deadline = bool(self.timed_out and outcome.started_at)
        origin = outcome.started_at + timeout if from_deadline else self.returned
        self.timeline = probe.Timeline(origin, "deadline" if from_deadline else "return")
        first = self.timeline.sample()
        # This call's own processes: what multiprocessing started during it, and any task process
        # in the tree that was not there before it (both: the first may be empty outside multiprocessing).
        baseline_pids = {p.pid for p in self.baseline.processes}
        self.own = (started_children() - self.started_before) | {
            p.pid for p in first if p.role == "task" and p.pid not in baseline_pids}
        self.leftover_procs = [p for p in first if p.pid in self.own]
        self.followed = [Followed(self.run_id, self.iteration, p.pid, p.start_time, origin, p.cpu_seconds,
                                  p.cpu_seconds, p.state) for p in self.leftover_procs]
        FOLLOWER.follow(self.followed)
        self.immediate = probe.snapshot()
        # From here on, whatever burns CPU is work nobody is waiting for any more: leftover task
        # processes, or DuckDB threads inside the worker that have not stopped yet (the follower's
        # thread is the lab's own, not the query's).
        watched = {p.pid for p in self.immediate.tasks if not p.zombie} | {
            p.pid for p in self.leftover_procs if p.state != "Z"}
        self.watch = probe.CpuWatch(sorted(watched), self.returned, exclude_tids=(FOLLOWER.tid(),))
        return self.immediate

    def look(self) -> None:
        FOLLOWER.look(self.followed)
        self.timeline.tick()

    def tick(self) -> None:
        """Sample CPU and look at the tree: while a clean-up waits for the processes it reaps."""
        self.watch.sample()
        self.look()

    def settle(self, seconds: float) -> str:
        """Watch until `seconds` after the return, then the tree again ("settled"); returns the log line."""
        self.quiet = self.watch.until(self.returned + seconds, tick=self.look)
        self.timeline.sample()
        self.settled = probe.snapshot()
        self.after = probe.Resources.of()
        self.reaped_after, self.reaped_last_seen = self.timeline.reaped(self.own)
        threads_now = probe.thread_cpu()
        self.threads_left = {tid: threads_now[tid] - ns for tid, ns in self.threads_at_return.items() if tid in threads_now}
        self.overshoot = round(self.outcome.elapsed - self.timeout, 4) if self.timed_out else None
        # Time from the deadline until no CPU work for the query was left anywhere: the caller's own
        # thread until it got control back, then the leftovers. None: still busy when settled.
        self.quiet_after_deadline = None
        if self.timed_out and self.quiet.quiet_after_return is not None:
            self.quiet_after_deadline = round(self.overshoot + self.quiet.quiet_after_return, 4)
        quiet = ("busy" if self.quiet.busy_at_end
                 else "-" if self.quiet_after_deadline is None else f"{self.quiet_after_deadline:.3f}s")
        return (f"iter={self.iteration} settled children={self.settled.children} zombies={self.settled.zombies} "
                f"leaked={len(self.settled.tasks)} cpu_after_deadline={self.quiet.cpu_seconds:.3f}s "
                f"overshoot={'-' if self.overshoot is None else f'{self.overshoot:.3f}s'} quiet={quiet}")

    def record(self, sizing: Sizing, cleanup, config, *, redelivered: bool, runtime: dict, pool: dict) -> dict:
        """The iteration's record: the worker's facts (`runtime`, `pool`) and what was measured."""
        outcome, timed_out = self.outcome, self.timed_out
        return {
            "run_id": self.run_id, "iteration": self.iteration,
            # The broker may have delivered this message before: a worker died holding it, or the
            # broker restarted before the ack arrived (RabbitMQ flags every message it recovers
            # then). This may be a second measurement of the iteration. docs/reliability.md
            "redelivered": redelivered,
            "worker": config.worker_name, "queue": config.queue, "hostname": socket.gethostname(),
            "pid": os.getpid(), **runtime, "strategy": config.strategy, "workload": config.workload,
            **pool,  # the Celery pool that ran it, and its concurrency
            "cleanup_enabled": config.cleans_up, "broker": config.broker.kind,
            "rows": sizing.rows, "timeout": self.timeout, **sizing.as_dict(),
            "duckdb_threads": config.duckdb_threads, "settle_seconds": config.settle_seconds,
            **outcome.as_dict(),
            "overshoot": self.overshoot,
            # seconds from the deadline to the query itself stopping, before the strategy's clean-up
            "stop_overshoot": (None if not timed_out or outcome.stopped is None
                               else round(outcome.stopped - self.timeout, 4)),
            "quiet_after_deadline": self.quiet_after_deadline,
            "quiet": self.quiet.as_dict(),
            "baseline": self.baseline.as_dict(), "immediate": self.immediate.as_dict(),
            "settled": self.settled.as_dict(),
            "cleanup": None if cleanup is None else cleanup.as_dict(),
            "leaked_task_pids": [p.pid for p in self.settled.tasks],
            "cpu_after_deadline": round(self.quiet.cpu_seconds, 3),
            "resources_before": self.before.__dict__, "resources_after": self.after.__dict__,
            "running_after_settle": sum(1 for p in self.settled.tasks if not p.zombie),
            # threads the call started still in the worker right after it, and at the end of the
            # settle window, with the CPU those burned in between (a thread abandoned in a C call)
            "threads_at_return": len(self.threads_at_return), "threads_left": len(self.threads_left),
            "threads_left_cpu": round(sum(self.threads_left.values()) / 1e9, 3),
            # The tree every TIMELINE_INTERVAL_SECONDS from the return to the end of the settle window
            # (or of the cleanup), times after the deadline; the first look at which this call's own
            # processes (`call_pids`) had all left it, i.e. were reaped (None: one was still there at
            # the last look), and the last look that still saw one (None: gone at the first).
            "call_pids": sorted(self.own), "timeline": self.timeline.as_dict(),
            "reaped_after": self.reaped_after, "reaped_last_seen": self.reaped_last_seen,
            # This call's processes still there when it returned, followed to their end; the producer
            # adds what they burned to the end of the run: cpu_to_end, running_at_end, ...
            "leftovers": [{"pid": p.pid, "start_time": p.start_time, "state_at_return": p.state,
                           "cpu_in_settle": self.watch.task_cpu(p.pid)} for p in self.leftover_procs],
        }
