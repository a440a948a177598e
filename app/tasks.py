"""`tasks.leak_demo`: one iteration of the experiment; `tasks.leftovers`: what its leftovers cost to the end.

The article's experiment, in the order it happens: check the arguments, size the call, run it
under the worker's timeout strategy (app/strategies.py; the article's is `process`,
timeout-decorator's multiprocessing fallback), log what it left behind (the article's line,
`iter=1 outcome=timeout children=3 zombies=1`), reap it on a clean-up worker (app/cleanup.py),
watch what is left for SETTLE_SECONDS and return the whole record as JSON-able data. The
measuring around the call lives in app/measure/iteration.py.

A shared task: it never imports the Celery app (app/celery.py), which includes this module; the
worker's settings and interpreter facts come from app/worker.py.
"""

from __future__ import annotations

import os

from celery import shared_task
from celery.utils.log import get_task_logger

from . import strategies
from .cleanup import reap_tasks
from .kernel import defaults
from .measure.followers import FOLLOWER
from .measure.iteration import Iteration, size_call
from .worker import CONFIG, POOL, RUNTIME

log = get_task_logger("tasks.leak_demo")


@shared_task(name=defaults.TASK_NAME, bind=True, resultrepr_maxsize=160)  # keep "succeeded" log lines short
def leak_demo(self, iteration: int, rows: int | None, timeout: float, run_id: str | None = None,
              query_seconds: float | None = None) -> dict:
    """`rows=None` (DUCKDB_ROWS=auto): as many rows as this interpreter scans in the target time."""
    _check_arguments(iteration, rows, timeout, query_seconds)
    timeout = float(timeout)
    sizing = size_call(rows, timeout, query_seconds, CONFIG)

    measured = Iteration(run_id, iteration)
    # the deadline counts from the task's start in this process (app/celery.py), not from here
    outcome = strategies.run(CONFIG.strategy, sizing.rows, timeout, CONFIG.duckdb_threads,
                             clock=strategies.TASK_CLOCK.take(), connection=CONFIG.connection,
                             workload=CONFIG.workload)
    now = measured.after_call(outcome, timeout)
    log.warning("iter=%d outcome=%s children=%d zombies=%d", iteration, outcome.outcome, now.children, now.zombies)

    cleanup = None
    if CONFIG.cleans_up and outcome.outcome == "timeout":
        # sampled while it waits for them: what they burn until they are gone is CPU after deadline
        cleanup = reap_tasks(grace=CONFIG.cleanup_grace, tick=measured.tick)
        log.warning("%s", cleanup.log_line())

    log.warning("%s", measured.settle(CONFIG.settle_seconds))
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return measured.record(sizing, cleanup, CONFIG, redelivered=redelivered, runtime=RUNTIME, pool=POOL)


@shared_task(name=defaults.LEFTOVERS_TASK_NAME)
def leftovers(run_id: str | None = None) -> dict:
    """What the followed processes of `run_id` in this worker burned after their deadlines, read now."""
    return {"run_id": run_id, "queue": CONFIG.queue, "worker": CONFIG.worker_name, "pid": os.getpid(),
            "leftovers": FOLLOWER.report(run_id)}


def _check_arguments(iteration, rows, timeout, query_seconds) -> None:
    """A message from outside the producer gets the producer's ranges (app/kernel/defaults.py)."""
    _check("iteration", iteration, 1, defaults.ITERATIONS_RANGE[1], int)
    if rows is not None:
        _check("rows", rows, *defaults.DUCKDB_ROWS_RANGE, int)
    _check("timeout", float(timeout), *defaults.DUCKDB_TIMEOUT_RANGE, float)
    if query_seconds is not None:
        _check("query_seconds", float(query_seconds), *defaults.QUERY_SECONDS_RANGE, float)


def _check(name: str, value, lo, hi, kind) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r}: expected {kind.__name__} from {lo} to {hi}")
