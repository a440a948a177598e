"""The lab's worker plus the pool benchmark's task (bench/pools.py): `celery -A app.experiments.bench_worker worker ...`.

`bench.payoff` is one task of the free-threaded payoff benchmark (issue 14): the lab's DuckDB
query under the worker's TIMEOUT_STRATEGY (app/strategies.py `run`, the deadline counted from the
task's start as in `tasks.leak_demo`), then a Python-side step that keeps the interpreter busy:
it fetches result rows from DuckDB and turns each into a Python dict, then folds them (bytecode,
the part the GIL serialises). Both parts are sized by the caller from measurements on the
worker's own interpreter (`calibrate` below): the query in rows (app/measure/calibrate.py), the Python
step in rows per second of this very step. The task returns its times (time.monotonic(), which
every process on the host reads alike), so the caller sees which tasks overlapped.

Run inside a lab venv, the calibration prints one result line (app/kernel/result_line.py) on stdout:

    python -m app.experiments.bench_worker calibrate JSON   # {"folder": ...}: DuckDB's rows/s and the step's rows/s

The batch is sent by the producer's sender (`python -m producer.send batch JSON`: warm-up, idle
pings, the batch with pings, every record). The lab's own workers never load this module.
"""

from __future__ import annotations

import gc
import os
import threading
import time

from ..kernel import result_line
from ..measure import calibrate
from .. import query, strategies
from ..celery import app  # noqa: F401  (`celery -A app.experiments.bench_worker` finds the app here)
from ..worker import CONFIG, POOL, RUNTIME

# BENCH_GC=off (bench/pools.py --gc off): the worker runs without the cyclic GC. On 3.14t the
# collector stops every thread and walks the whole heap, and the step allocates a dict per row.
if os.environ.get("BENCH_GC", "on") == "off":
    gc.disable()

TASK_NAME = "bench.payoff"  # what bench/pools.py has producer/send.py send

# The Python-side step: result rows turned into Python objects.
STEP_SQL = "SELECT range AS id, range % 97 AS k, hash(range) % 1000003 AS h FROM range(?)"
STEP_PROBE_SECONDS = 0.08  # one probe call at least this long (as app/measure/calibrate.py times the query)
STEP_PROBE_START = 2_000

_local = threading.local()  # one DuckDB connection per thread for the step (never shared between threads)
# duckdb.connect() from two threads at once aborts 3.14t: query.connect opens every connection of
# the lab under one lock (app/query.py CONNECT_LOCK), the step's too.


def _step_connection():
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = query.connect(1)
    return con


def python_step(rows: int) -> int:
    """Fetch `rows` result rows and turn each into a dict, then fold them: mostly bytecode."""
    fetched = _step_connection().execute(STEP_SQL, [int(rows)]).fetchall()
    objects = []
    for id_, k, h in fetched:
        objects.append({"id": id_, "key": f"k{k}", "score": (h * 31 + id_) % 1009, "even": not id_ & 1})
    total = 0
    for obj in objects:
        total += obj["score"] if obj["even"] else -obj["score"]
    return total


def measure_step() -> dict:
    """The step's speed on this interpreter: rows per second, grown until one call takes
    STEP_PROBE_SECONDS, then the median of three calls of that size (as calibrate.measure)."""
    began = time.perf_counter()
    rows, median = calibrate.probe(python_step, STEP_PROBE_START, seconds=STEP_PROBE_SECONDS, max_size=10**9)
    return {"rows_per_second": round(rows / median, 1), "probe_rows": rows, "probe_seconds": round(median, 6),
            "measured_seconds": round(time.perf_counter() - began, 3)}


@app.task(name=TASK_NAME, bind=True, resultrepr_maxsize=120)
def payoff(self, index: int, rows: int, timeout: float, step_rows: int, run_id: str | None = None) -> dict:
    """The query under the worker's strategy (deadline from the task's start), then the Python step."""
    clock = strategies.TASK_CLOCK.take()
    if CONFIG.connection == "reused":  # this thread's kept connection, opened once (under query.CONNECT_LOCK)
        strategies.REUSED.get(CONFIG.strategy, CONFIG.duckdb_threads)
    outcome = strategies.run(CONFIG.strategy, int(rows), float(timeout), CONFIG.duckdb_threads, clock=clock,
                             connection=CONFIG.connection)
    query_end = time.monotonic()
    step_value = python_step(step_rows) if step_rows else 0
    end = time.monotonic()
    out = outcome.as_dict()
    timed_out = outcome.outcome == "timeout"
    return {
        "run_id": run_id,
        "index": index,
        "queue": CONFIG.queue,
        "worker": CONFIG.worker_name,
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        **RUNTIME,
        **POOL,
        "strategy": CONFIG.strategy,
        "rows": rows,
        "timeout": timeout,
        "step_rows": step_rows,
        "step_value": step_value,
        **out,
        "start": out["clock_start"],  # the task's start (task_prerun, or the prefork pool's accept)
        "query_end": round(query_end, 6),
        "end": round(end, 6),
        "step_seconds": round(end - query_end, 6),
        "gc_enabled": gc.isenabled(),
        "overshoot": round(outcome.elapsed - timeout, 6) if timed_out else None,
        "stop_overshoot": (round(outcome.stopped - timeout, 6) if timed_out and outcome.stopped is not None
                           else None),
    }


# --- helpers run as `python -m app.experiments.bench_worker NAME JSON` ----------------------------------------


def calibrate_here(params: dict) -> dict:
    """DuckDB's rows/s (published to `folder`, which the run's workers of this build then read) and the step's."""
    calibration = calibrate.cached(1, params.get("folder"))
    return {**RUNTIME, "calibration": calibration.as_dict(), "step": measure_step()}


HELPERS = {"calibrate": calibrate_here}


def main(argv: list[str] | None = None) -> int:
    return result_line.answer("app.experiments.bench_worker", HELPERS, argv)


if __name__ == "__main__":
    # Run under the module's real name, so the task registered is app.experiments.bench_worker's, not __main__'s.
    from app.experiments import bench_worker

    raise SystemExit(bench_worker.main())
