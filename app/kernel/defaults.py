"""The experiment's defaults and accepted ranges: broker, workload, what the worker measures, the producer's waits.

The worker (app/), the producer (producer/), the host scripts (scripts/) and the tests read
these values from here, so a default changed here changes everywhere. Not here: the
experiment's axes (timeout strategies, pools, builds and the queue grammar) are declared in
app/kernel/axes.py, the calibration probe's constants in app/measure/calibrate.py, and the host scripts' own
settings (LAB_CACHE, LAB_BROKER, the CPython version) in scripts/labctl/. README.md's
"Settings (env overrides)" table lists the variables.
"""

from __future__ import annotations

# --- broker -------------------------------------------------------------------------------
BROKER_URL = "amqp://guest:guest@localhost:5672//"
# kombu's filesystem transport: the embedded broker that needs no server (`scripts/lab run`
# on a bare machine). The path after the scheme is the message folder.
FILESYSTEM_SCHEME = "filesystem://"

# --- the workload ---------------------------------------------------------------------------
# The article's query, verbatim (its app/tasks.py, `_duckdb_query`): sum n integers on one DuckDB
# thread. DUCKDB_ROWS means n of this query, so the article's commands mean the same work here.
DUCKDB_SQL = "SELECT sum(i) FROM range(?) t(i)"
ITERATIONS = 3
ITERATIONS_RANGE = (1, 10_000)
# Rows scanned by the DuckDB query. `None` is DUCKDB_ROWS=auto: the worker measures the query's
# speed on its own interpreter (app/measure/calibrate.py) and scans as many rows as take QUERY_SECONDS.
# An explicit count still wins (the article's commands pass 1e9).
DUCKDB_ROWS = None
DUCKDB_ROWS_RANGE = (1, 10**12)
# How long the auto-sized query would run if nothing stopped it. `None` is QUERY_SECONDS=auto:
# QUERY_TIMEOUTS x DUCKDB_TIMEOUT (10 s at the default 0.5 s), and at least QUERY_BEYOND_SETTLE
# seconds past the worker's settle window, so that under `fork` (where a timed-out child keeps
# running the query) the leftovers are still running at every snapshot of the run's iterations.
QUERY_SECONDS = None
QUERY_SECONDS_RANGE = (0.01, 86_400.0)
QUERY_TIMEOUTS = 20
QUERY_BEYOND_SETTLE = 2.0
DUCKDB_TIMEOUT = 0.5  # seconds
DUCKDB_TIMEOUT_RANGE = (0.01, 3600.0)
DUCKDB_THREADS = 1
DUCKDB_THREADS_RANGE = (1, 256)

# --- what the worker measures -----------------------------------------------------------------
# The article's `children=3 zombies=1` is a snapshot taken right after the timed-out call
# returns; the second snapshot, SETTLE_SECONDS later, shows what the forkserver reaped by then.
SETTLE_SECONDS = 0.5
SETTLE_SECONDS_RANGE = (0.0, 60.0)
# CLEANUP_CHILDREN: SIGTERM the task processes, wait this long, SIGKILL survivors, wait again.
CLEANUP_GRACE_SECONDS = 1.0
CLEANUP_GRACE_RANGE = (0.0, 60.0)

# After the settle window: the processes a call left behind are followed (app/measure/followers.py, by
# pid and start time) until they exit or the run ends, looking at each this often; the producer
# asks each queue for what they burned (LEFTOVERS_TASK_NAME) and waits this long for all answers.
FOLLOW_INTERVAL_SECONDS = 0.05
LEFTOVERS_REPLY_SECONDS = 15.0
# Over the settle window (and a cleanup, if longer) the worker lists its descendants this often:
# the record's `timeline`, where a reaping shows as a step.
TIMELINE_INTERVAL_SECONDS = 0.02

# --- timeout strategies, builds, queues: app/kernel/axes.py (one declaration each) -------------------
STRATEGY = "process"  # a worker on a queue outside the grammar (QUEUE=anything) uses this one
TARGET_QUEUES = ("gil", "gil-clean")  # what `docker compose up -d rabbitmq worker-gil worker-gil-clean` serves

# --- producer ---------------------------------------------------------------------------------
RESULTS_DIR = "results"
# How long the producer waits for one iteration's result beyond its own timeout + settle time
# before it reports the iteration as missing (never a hang).
RESULT_GRACE_SECONDS = 60.0
RESULT_GRACE_RANGE = (1.0, 3600.0)
# How long the producer and workers keep retrying an unreachable broker before giving up.
BROKER_CONNECT_SECONDS = 10.0
BROKER_CONNECT_RANGE = (0.0, 600.0)

TASK_NAME = "tasks.leak_demo"
LEFTOVERS_TASK_NAME = "tasks.leftovers"
