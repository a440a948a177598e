"""The worker's Celery app: `celery -A app worker --pool=solo -Q <queue>` loads this module.

Celery's `-A app` looks for the app at `app.app`, then `app.celery`, then in the submodule
`app.celery` (celery/app/utils.py find_app; the project layout of Celery's "Next Steps" guide), so
importing the package or its other modules imports neither Celery nor DuckDB. The tasks
(app/tasks.py, shared tasks that never import this module) are the app's `include`: the worker
imports them when it starts.

Importing this module starts the worker's side first (app/worker.py): its settings are parsed from
the environment, and a bad value stops it with one line naming the variable and exit status 2,
before it connects to anything.
"""

from __future__ import annotations

import logging
import os
import sys

from celery import signals

from .broker import BrokerUnreachable, make_celery, wait_for_broker
from .worker import CONFIG, POOL, RUNTIME

app = make_celery(CONFIG.broker, main="gil-timeout-lab")
app.conf.update(include=["app.tasks"], task_default_queue=CONFIG.queue)

log = logging.getLogger("lab.worker")


# celery.concurrency's modules, by the name `--pool` takes (celery/concurrency/__init__.py ALIASES)
_POOL_MODULES = {"solo": "solo", "thread": "threads", "prefork": "prefork", "gevent": "gevent", "eventlet": "eventlet"}


@signals.worker_init.connect
def _check_the_pool(sender=None, **_):
    """The pool Celery really runs, for every record; a queue that names another pool stops the worker (exit 2)."""
    cls = getattr(sender, "pool_cls", None)
    module = getattr(cls, "__module__", "") or ""
    POOL.update(pool=_POOL_MODULES.get(module.rsplit(".", 1)[-1], module or None),
                concurrency=getattr(sender, "concurrency", None))
    if CONFIG.pool and POOL["pool"] != CONFIG.pool:
        print(f"worker: QUEUE={CONFIG.queue}: the queue is the {CONFIG.pool} pool's, this worker runs "
              f"{POOL['pool']} (start it with `celery worker --pool={CONFIG.pool}`); exiting", file=sys.stderr, flush=True)
        raise SystemExit(2)


@signals.worker_init.connect
def _wait_for_broker(**_):
    """Before Celery's own (traceback-ending) start-up retries: the producer's countdown, one line, exit 2."""
    try:
        wait_for_broker(
            app, CONFIG.broker.connect_seconds, say=lambda msg: print(msg, file=sys.stderr, flush=True), who="worker"
        )
    except BrokerUnreachable as exc:
        print(
            f"worker: BROKER_URL={CONFIG.broker.display_url}: broker unreachable after "
            f"{CONFIG.broker.connect_seconds:g}s (BROKER_CONNECT_SECONDS) - {exc}; exiting",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2) from None  # Celery's signal dispatch catches Exception, not SystemExit


@signals.worker_process_init.connect
def _clock_from_the_pool_accept(**_):
    """In a prefork pool process, before its loop: billiard stamps each task it accepts with
    `now()` (the ACK whose reading starts Celery's time limits); that stamp becomes the task's
    clock start (app/strategies.py TaskClock). The solo pool sends this signal too, and runs no loop."""
    import inspect

    from billiard import pool

    from .strategies import TASK_CLOCK

    loop = pool.Worker.workloop
    if "now" in inspect.signature(loop).parameters and not hasattr(loop, "lab_clock"):
        def workloop(self, *args, **kwargs):
            return loop(self, *args, **{"now": TASK_CLOCK.accept, **kwargs})

        workloop.lab_clock = True
        pool.Worker.workloop = workloop


@signals.task_prerun.connect
def _clock_at_the_task_start(**_):
    """In the process that runs the task: its clock starts at the pool's accept, or now (solo)."""
    from .strategies import TASK_CLOCK

    TASK_CLOCK.prerun()


@signals.worker_ready.connect
def _announce(**_):
    # Measure the query's speed now, before the first task: sizing is not part of any iteration.
    from .measure.calibrate import cached

    log.warning("calibration: %s", cached(CONFIG.duckdb_threads, CONFIG.calibration_dir, workload=CONFIG.workload).describe())
    facts = " ".join(f"{k}={v}" for k, v in RUNTIME.items() if v is not None)
    log.warning(
        "worker=%s queue=%s strategy=%s workload=%s pool=%s concurrency=%s cleanup=%d broker=%s %s",
        CONFIG.worker_name,
        CONFIG.queue,
        CONFIG.strategy,
        CONFIG.workload,
        POOL["pool"],
        POOL["concurrency"],
        CONFIG.cleans_up,
        CONFIG.broker.kind,
        facts,
    )


@signals.worker_ready.connect
def _mark_ready(**_):
    """Docker's healthcheck (`test -f $WORKER_READY_FILE`): consuming, calibrated, announced. Unset: no file."""
    if path := os.environ.get("WORKER_READY_FILE"):
        with open(path, "w") as f:
            f.write(f"{CONFIG.worker_name} {os.getpid()}\n")
