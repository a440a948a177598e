"""`tasks.leak_demo`: one iteration of the experiment; `tasks.leftovers`: what its leftovers cost to the end.

Baseline, workload, measure: the worker's resources before the call, the timed-out DuckDB call
under the configured strategy, a process-tree snapshot right after it returns ("immediate"),
optional cleanup, CPU sampling of whatever is left (other worker threads, task processes) for
SETTLE_SECONDS, a second snapshot then ("settled"), the resources after. Meanwhile the tree is
looked at every TIMELINE_INTERVAL_SECONDS (the record's `timeline`, after every call, timed out
or not), and the call's own processes still there when it returned are handed to the follower
(app/measure/followers.py), which reads them until they end; `tasks.leftovers(run_id)`, sent by the
producer at the end of the run, answers what they burned by then.
It logs the article's line and returns the whole record as JSON-able data.

A shared task: it never imports the Celery app (app/celery.py), which includes this module; the
worker's settings and interpreter facts come from app/worker.py.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time

from celery import shared_task
from celery.utils.log import get_task_logger

from .measure import calibrate, probe
from .kernel import defaults
from . import strategies
from .cleanup import reap_tasks
from .measure.followers import FOLLOWER, Followed
from .worker import CONFIG, POOL, RUNTIME

log = get_task_logger("tasks.leak_demo")


def _check(name: str, value, lo, hi, kind):
    if not isinstance(value, kind) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r}: expected {kind.__name__} from {lo} to {hi}")


def _started_children() -> set[int]:
    """The pids of the processes multiprocessing started here and has not reaped yet.

    Read from multiprocessing's own registry, not polled: active_children() would reap them and
    so change what the experiment measures. Under forkserver the pid is the real task process's."""
    children = getattr(multiprocessing.process, "_children", ())
    return {pid for pid in (getattr(p, "pid", None) for p in list(children)) if pid is not None}


@shared_task(name=defaults.LEFTOVERS_TASK_NAME)
def leftovers(run_id: str | None = None) -> dict:
    """What the followed processes of `run_id` in this worker burned after their deadlines, read now."""
    return {"run_id": run_id, "queue": CONFIG.queue, "worker": CONFIG.worker_name, "pid": os.getpid(),
            "leftovers": FOLLOWER.report(run_id)}


@shared_task(name=defaults.TASK_NAME, bind=True, resultrepr_maxsize=160)  # keep "succeeded" log lines short
def leak_demo(self, iteration: int, rows: int | None, timeout: float, run_id: str | None = None,
              query_seconds: float | None = None) -> dict:
    """`rows=None` (DUCKDB_ROWS=auto): as many rows as this interpreter scans in the target time."""
    _check("iteration", iteration, 1, defaults.ITERATIONS_RANGE[1], int)
    if rows is not None:
        _check("rows", rows, *defaults.DUCKDB_ROWS_RANGE, int)
    _check("timeout", float(timeout), *defaults.DUCKDB_TIMEOUT_RANGE, float)
    if query_seconds is not None:
        _check("query_seconds", float(query_seconds), *defaults.QUERY_SECONDS_RANGE, float)
    timeout = float(timeout)

    # Sizing the query (measured once per worker, before the first baseline: not part of any iteration)
    calibration = calibrate.cached(CONFIG.duckdb_threads, CONFIG.calibration_dir, workload=CONFIG.workload)
    target = calibrate.target_seconds(timeout, CONFIG.settle_seconds, query_seconds)
    if CONFIG.workload != "duckdb":
        rows = None  # DUCKDB_ROWS sizes DuckDB's query; every other workload is sized by its own calibration
    requested = "auto" if rows is None else rows
    rows = calibration.rows_for(target) if rows is None else rows
    expected = calibration.seconds_for(rows)

    before = probe.Resources.of()
    baseline = probe.snapshot()
    started_before = _started_children()
    # the deadline and every time of the record count from the task's start in this process (app/celery.py)
    outcome = strategies.run(CONFIG.strategy, rows, timeout, CONFIG.duckdb_threads, clock=strategies.TASK_CLOCK.take(),
                             connection=CONFIG.connection, workload=CONFIG.workload)
    returned = time.monotonic()
    timed_out = outcome.outcome == "timeout"
    # The timeline's clock starts at the deadline (at the return, for a call that ended in time);
    # its first look comes before the psutil snapshot, which is too slow to see a quick reaping.
    from_deadline = bool(timed_out and outcome.started_at)
    origin = outcome.started_at + timeout if from_deadline else returned
    timeline = probe.Timeline(origin, "deadline" if from_deadline else "return")
    first = timeline.sample()
    # This call's own processes: what multiprocessing started during it, and any task process
    # in the tree that was not there before it (both: the first may be empty outside multiprocessing).
    baseline_pids = {p.pid for p in baseline.processes}
    own = (_started_children() - started_before) | {p.pid for p in first if p.role == "task"
                                                     and p.pid not in baseline_pids}
    leftover_procs = [p for p in first if p.pid in own]
    followed = [Followed(run_id, iteration, p.pid, p.start_time, origin, p.cpu_seconds, p.cpu_seconds, p.state)
                for p in leftover_procs]
    FOLLOWER.follow(followed)
    immediate = probe.snapshot()
    # From here on, whatever burns CPU is work nobody is waiting for any more: leftover task
    # processes, or DuckDB threads inside the worker that have not stopped yet (the follower's
    # thread is the lab's own, not the query's).
    watched = {p.pid for p in immediate.tasks if not p.zombie} | {p.pid for p in leftover_procs if p.state != "Z"}
    watch = probe.CpuWatch(sorted(watched), returned, exclude_tids=(FOLLOWER.tid(),))
    log.warning(
        "iter=%d outcome=%s children=%d zombies=%d", iteration, outcome.outcome, immediate.children, immediate.zombies
    )

    def look() -> None:
        FOLLOWER.look(followed)
        timeline.tick()

    def tick() -> None:
        watch.sample()
        look()

    cleanup = None
    if CONFIG.cleans_up and outcome.outcome == "timeout":
        # sample while it waits for them: what they burn until they are gone is CPU after deadline
        cleanup = reap_tasks(grace=CONFIG.cleanup_grace, tick=tick)
        log.warning("%s", cleanup.log_line())

    quiet = watch.until(returned + CONFIG.settle_seconds, tick=look)
    timeline.sample()
    settled = probe.snapshot()
    after = probe.Resources.of()
    reaped_after, reaped_last_seen = timeline.reaped(own)

    leaked = [p.pid for p in settled.tasks]
    overshoot = round(outcome.elapsed - timeout, 4) if timed_out else None
    # Time from the deadline until no CPU work for the query was left anywhere: the caller's own
    # thread until it got control back, then the leftovers. None: still busy when settled.
    quiet_after_deadline = None
    if timed_out and quiet.quiet_after_return is not None:
        quiet_after_deadline = round(overshoot + quiet.quiet_after_return, 4)
    cpu_after_deadline = round(quiet.cpu_seconds, 3)
    log.warning(
        "iter=%d settled children=%d zombies=%d leaked=%d cpu_after_deadline=%.3fs overshoot=%s quiet=%s",
        iteration,
        settled.children,
        settled.zombies,
        len(leaked),
        cpu_after_deadline,
        "-" if overshoot is None else f"{overshoot:.3f}s",
        "busy" if quiet.busy_at_end else ("-" if quiet_after_deadline is None else f"{quiet_after_deadline:.3f}s"),
    )
    return {
        "run_id": run_id,
        "iteration": iteration,
        # The broker may have delivered this message before: a worker died holding it, or the
        # broker restarted before the ack arrived (RabbitMQ flags every message it recovers
        # then). This may be a second measurement of the iteration. docs/reliability.md
        "redelivered": bool((self.request.delivery_info or {}).get("redelivered")),
        "worker": CONFIG.worker_name,
        "queue": CONFIG.queue,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        **RUNTIME,
        "strategy": CONFIG.strategy,
        "workload": CONFIG.workload,
        **POOL,  # the Celery pool that ran it, and its concurrency
        "cleanup_enabled": CONFIG.cleans_up,
        "broker": CONFIG.broker.kind,
        "rows": rows,
        "timeout": timeout,
        # how the query was sized: asked-for rows ("auto" or a count), the target duration of an
        # auto-sized query, how long this worker expected `rows` to take, and its measured speed
        "rows_requested": requested,
        "query_seconds": round(target, 3) if requested == "auto" else None,
        "expected_seconds": round(expected, 3),
        "calibration": calibration.as_dict(),
        "duckdb_threads": CONFIG.duckdb_threads,
        "settle_seconds": CONFIG.settle_seconds,
        **outcome.as_dict(),
        "overshoot": overshoot,
        # seconds from the deadline to the query itself stopping, before the strategy's clean-up
        "stop_overshoot": None if not timed_out or outcome.stopped is None else round(outcome.stopped - timeout, 4),
        "quiet_after_deadline": quiet_after_deadline,
        "quiet": quiet.as_dict(),
        "baseline": baseline.as_dict(),
        "immediate": immediate.as_dict(),
        "settled": settled.as_dict(),
        "cleanup": None if cleanup is None else cleanup.as_dict(),
        "leaked_task_pids": leaked,
        "cpu_after_deadline": cpu_after_deadline,
        "resources_before": before.__dict__,
        "resources_after": after.__dict__,
        "running_after_settle": sum(1 for p in settled.tasks if not p.zombie),
        # The tree every TIMELINE_INTERVAL_SECONDS from the return to the end of the settle window
        # (or of the cleanup), times after the deadline (`origin`); the first look at which this
        # call's own processes (`call_pids`) had all left it, i.e. were reaped (None: one was still
        # there at the last look), and the last look that still saw one (None: gone at the first).
        "call_pids": sorted(own),
        "timeline": timeline.as_dict(),
        "reaped_after": reaped_after,
        "reaped_last_seen": reaped_last_seen,
        # This call's processes still there when it returned, followed to their end (app/measure/followers.py);
        # the producer adds what they burned to the end of the run: cpu_to_end, running_at_end, ...
        "leftovers": [{"pid": p.pid, "start_time": p.start_time, "state_at_return": p.state,
                       "cpu_in_settle": watch.task_cpu(p.pid)} for p in leftover_procs],
    }
