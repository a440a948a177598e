"""The worker's Celery app: `celery -A app worker --pool=solo -Q <queue>`.

Configuration comes from the environment through `WorkerConfig`; a bad value stops the worker
with one line naming the variable and exit status 2, before it connects to anything.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys

from celery import signals

from .broker import BrokerUnreachable, make_celery, wait_for_broker
from .config import WorkerConfig
from .envparse import ConfigError

try:
    CONFIG = WorkerConfig.from_env()
except ConfigError as exc:
    print(f"worker: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

if CONFIG.start_method:
    # timeout-decorator uses multiprocessing's default context: setting it here is enough.
    multiprocessing.set_start_method(CONFIG.start_method, force=True)

# Import DuckDB at start-up, as a real worker would: on a free-threaded build this import is what
# turns the GIL back on unless PYTHON_GIL=0, and every record reports the state after it.
from . import interpreter  # noqa: E402

RUNTIME = interpreter.describe()

app = make_celery(CONFIG.broker, main="gil-timeout-lab")
app.conf.task_default_queue = CONFIG.queue

from . import tasks  # noqa: E402,F401  (registers tasks.leak_demo)

log = logging.getLogger("lab.worker")


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


@signals.worker_ready.connect
def _announce(**_):
    # Measure the query's speed now, before the first task: sizing is not part of any iteration.
    from .calibrate import cached

    log.warning("calibration: %s", cached(CONFIG.duckdb_threads, CONFIG.calibration_dir).describe())
    facts = " ".join(f"{k}={v}" for k, v in RUNTIME.items())
    log.warning(
        "worker=%s queue=%s strategy=%s cleanup=%d broker=%s %s",
        CONFIG.worker_name,
        CONFIG.queue,
        CONFIG.strategy,
        CONFIG.cleans_up,
        CONFIG.broker.kind,
        facts,
    )
