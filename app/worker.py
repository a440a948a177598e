"""The worker process's start-up, before Celery connects to anything: settings, start method, DuckDB.

Importing this module is starting a worker: only the worker's Celery app (app/celery.py) and its
tasks (app/tasks.py) import it, never the producer or the host scripts. It holds what the worker
fixes once, from its environment and its interpreter:

  CONFIG   the WorkerConfig parsed from os.environ; a bad value stops the worker with one line
           naming the variable and exit status 2
  RUNTIME  the interpreter's facts every record carries, taken after importing DuckDB
  POOL     the Celery pool this worker runs and its concurrency, filled in by app/celery.py's
           worker_init hook (a prefork pool process inherits it)
"""

from __future__ import annotations

import multiprocessing
import sys

from .kernel import axes, interpreter
from .kernel.config import WorkerConfig
from .kernel.envparse import ConfigError


def _config() -> WorkerConfig:
    try:
        return WorkerConfig.from_env()
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


CONFIG = _config()

if CONFIG.start_method:
    # timeout-decorator uses multiprocessing's default context: setting it here is enough.
    multiprocessing.set_start_method(CONFIG.start_method, force=True)

# Import DuckDB at start-up, as a real worker would: on a free-threaded build this import is what
# turns the GIL back on unless PYTHON_GIL=0, and every record reports the state after it.
try:
    RUNTIME = interpreter.describe()
except ImportError as exc:
    # Said here: Celery's `-A app` swallows an ImportError raised while importing app.celery and
    # reports "Module 'app' has no attribute 'celery'" instead (celery/app/utils.py find_app).
    print(f"worker: cannot import duckdb - {type(exc).__name__}: {exc}", file=sys.stderr)
    raise SystemExit(1) from None
# the timeout library the worker's strategy measures, as installed (docs/libraries.md)
_LIBRARY = axes.STRATEGIES[CONFIG.strategy].library
RUNTIME.update(library=_LIBRARY, library_version=interpreter.package_version(_LIBRARY))


POOL: dict = {"pool": None, "concurrency": None}
