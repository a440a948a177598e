"""`tasks.leak_demo`: one iteration of the experiment.

Baseline, workload, measure: the worker's resources before the call, the timed-out DuckDB call
under the configured strategy, a process-tree snapshot right after it returns ("immediate"),
optional cleanup, CPU sampling of whatever is left (other worker threads, task processes) for
SETTLE_SECONDS, a second snapshot then ("settled"), the resources after.
It logs the article's line and returns the whole record as JSON-able data.

A shared task: it never imports the Celery app (app/celery.py), which includes this module; the
worker's settings and interpreter facts come from app/worker.py.
"""

from __future__ import annotations

import os
import socket
import time

from celery import shared_task
from celery.utils.log import get_task_logger

from . import calibrate, defaults, probe, strategies
from .cleanup import reap_tasks
from .worker import CONFIG, RUNTIME

log = get_task_logger("tasks.leak_demo")


def _check(name: str, value, lo, hi, kind):
    if not isinstance(value, kind) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r}: expected {kind.__name__} from {lo} to {hi}")


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
    calibration = calibrate.cached(CONFIG.duckdb_threads, CONFIG.calibration_dir)
    target = calibrate.target_seconds(timeout, CONFIG.settle_seconds, query_seconds)
    requested = "auto" if rows is None else rows
    rows = calibration.rows_for(target) if rows is None else rows
    expected = calibration.seconds_for(rows)

    before = probe.Resources.of()
    baseline = probe.snapshot()
    outcome = strategies.run(CONFIG.strategy, rows, timeout, CONFIG.duckdb_threads)
    returned = time.monotonic()
    immediate = probe.snapshot()
    # From here on, whatever burns CPU is work nobody is waiting for any more: leftover task
    # processes, or DuckDB threads inside the worker that have not stopped yet.
    watch = probe.CpuWatch([p.pid for p in immediate.tasks if not p.zombie], returned)
    log.warning(
        "iter=%d outcome=%s children=%d zombies=%d", iteration, outcome.outcome, immediate.children, immediate.zombies
    )

    cleanup = None
    if CONFIG.cleans_up and outcome.outcome == "timeout":
        # sample while it waits for them: what they burn until they are gone is CPU after deadline
        cleanup = reap_tasks(grace=CONFIG.cleanup_grace, tick=watch.sample)
        log.warning("%s", cleanup.log_line())

    quiet = watch.until(returned + CONFIG.settle_seconds)
    settled = probe.snapshot()
    after = probe.Resources.of()

    leaked = [p.pid for p in settled.tasks]
    timed_out = outcome.outcome == "timeout"
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
    }
