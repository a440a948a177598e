"""`python -m producer.send KIND JSON`: send tasks to one worker's queue, collect them, print one result line.

The host's commands run this inside a lab venv, beside the worker they measure, and read only its
result line (app/kernel/result_line.py); the broker comes from the environment (BROKER_URL).

- `iterations`: `iterations` tasks of the lab's kind (`tasks.leak_demo`, or the claims run's
  variant of it) on one queue, with the producer's own enqueue and collect (producer/run.py):
  `scripts/lab claims` and `scripts/lab pools`.
- `batch`: the pool benchmark's (bench/pools.py, the task of app/experiments/bench_worker.py):
  small warm-up tasks, idle pings, then the whole batch at once while the worker is pinged.

Either way no empty reply queue is left on the broker (run.drop_reply_queue).
"""

from __future__ import annotations

import os
import threading
import time

from app.broker import make_celery
from app.kernel import result_line
from app.kernel.config import BrokerConfig

from . import run
from .config import ProducerConfig


def client(name: str):
    """A Celery app for sending, on the broker of the environment."""
    return make_celery(BrokerConfig.from_env(os.environ), main=f"gil-timeout-lab-{name}")


def iterations(params: dict) -> dict:
    """Send `iterations` tasks to `queue` and collect every record, as the producer does.

    params: queue, task, iterations, rows (None: DUCKDB_ROWS=auto, the worker sizes the query),
    query_seconds (None: the worker's auto target), timeout, run_id, time_limits (send Celery's
    soft/hard time limits with each task) and wait (seconds for all the results); `options`,
    Celery's options for each task instead of the time_limits choice (`scripts/lab pools`: a soft
    limit alone, a hard limit alone). A task that failed is recorded as outcome `failed`, one whose
    result did not come back as `missing`, each in the producer's own record; a broker lost while
    sending is an error (no result line: the job runs again).
    """
    rows, queue, options = params.get("rows"), params["queue"], params.get("options")
    cfg = ProducerConfig(
        iterations=int(params["iterations"]), duckdb_rows=None if rows is None else int(rows),
        duckdb_timeout=float(params["timeout"]), query_seconds=params.get("query_seconds"), target_queues=(queue,),
        results_dir="", run_id=params.get("run_id"), result_grace=0.0, settle_seconds=0.0,
        broker=BrokerConfig.from_env(os.environ),
    )
    time_limits = bool(params.get("time_limits"))
    celery = make_celery(cfg.broker, main="gil-timeout-lab-claims")

    def say(*args, **kwargs):  # the producer's progress lines, in the sender's log
        print(*args, **kwargs, flush=True)

    try:
        sent = run.enqueue(celery, cfg, say, task=params["task"], time_limits=time_limits, options=options)
        if any(result is None for *_, result in sent):
            raise RuntimeError("the broker was lost while sending the tasks")
        collected = run.collect(cfg, sent, say, budget=float(params["wait"]), failure_outcome="failed")
    finally:
        run.drop_reply_queue(celery)
    records = sorted(collected.records + collected.missing, key=lambda r: r["iteration"])
    limits = run.task_options(cfg, queue, time_limits) if options is None else options
    return {"queue": queue, "records": records, "time_limits": limits or None}


class Pinger(threading.Thread):
    """Pings one worker node every `interval` seconds until stopped: when each ping went out, how long the reply took."""

    def __init__(self, node: str, interval: float, timeout: float):
        super().__init__(name="bench-pinger", daemon=True)
        self.app, self.node, self.interval, self.timeout = client("bench"), node, interval, timeout
        self.samples: list[dict] = []
        self._stop_event = threading.Event()

    def ping_once(self) -> dict:
        sent = time.monotonic()
        try:
            replies = self.app.control.ping(destination=[self.node], timeout=self.timeout)
            error = None
        except Exception as exc:  # noqa: BLE001 - a broker hiccup is a sample without a reply
            replies, error = [], f"{type(exc).__name__}: {exc}"[:160]
        back = time.monotonic()
        answered = any(self.node in r for r in replies or [])
        return {"sent": round(sent, 6), "latency": round(back - sent, 6) if answered else None, "error": error}

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(self.ping_once())
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(self.timeout + 5)


def batch(params: dict) -> dict:
    """Warm-up tasks, idle pings, then the batch (with pings meanwhile); every record back.

    params: queue, task (the benchmark's, `bench.payoff`), node (the worker's `<name>@<host>`),
    tasks ([{"index", "rows", "step_rows"}]), warmup (how many small tasks first), timeout, run_id,
    wait (seconds for all results), idle_pings, ping_interval, ping_timeout.
    """
    celery = client("bench")
    queue, task, timeout, run_id = params["queue"], params["task"], float(params["timeout"]), params.get("run_id")
    ping_timeout, interval = float(params.get("ping_timeout", 3.0)), float(params.get("ping_interval", 0.1))

    def submit(tasks):
        return [(t["index"], celery.send_task(task, kwargs={"index": t["index"], "rows": t["rows"], "timeout": timeout,
                                                            "step_rows": t["step_rows"], "run_id": run_id}, queue=queue))
                for t in tasks]

    def gather(sent, budget):
        deadline = time.monotonic() + budget
        records, errors = [], []
        for index, result in sent:
            try:
                records.append(result.get(timeout=max(0.1, deadline - time.monotonic()), propagate=True))
            except Exception as exc:  # noqa: BLE001 - recorded: the report counts it
                errors.append({"index": index, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return records, errors

    pinger = Pinger(params["node"], interval, ping_timeout)
    try:
        warm = [{"index": -1 - i, "rows": 1000, "step_rows": 1000} for i in range(int(params.get("warmup", 0)))]
        warm_records, warm_errors = gather(submit(warm), 60.0) if warm else ([], [])
        idle = [pinger.ping_once() for _ in range(int(params.get("idle_pings", 10)))]
        pinger.start()
        sent_at = time.monotonic()
        records, errors = gather(submit(params["tasks"]), float(params["wait"]))
        done_at = time.monotonic()
        pinger.stop()
    finally:
        run.drop_reply_queue(celery)
    return {"queue": queue, "records": sorted(records, key=lambda r: r["index"]), "errors": errors,
            "warmup": {"records": len(warm_records), "errors": warm_errors},
            "sent_at": round(sent_at, 6), "done_at": round(done_at, 6),
            "pings": {"idle": idle, "load": pinger.samples}}


KINDS = {"iterations": iterations, "batch": batch}


def main(argv: list[str] | None = None) -> int:
    return result_line.answer("producer.send", KINDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
