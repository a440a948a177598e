"""The DuckDB query the lab times out.

`run_query` is a top-level function on purpose: under the `forkserver` and `spawn` start
methods (forkserver is CPython 3.14's default on Linux) multiprocessing pickles the target by
reference, so a nested function or a lambda fails before the query starts.
"""

from __future__ import annotations

import math
import threading
import time

import duckdb

from .kernel import defaults

SQL = defaults.DUCKDB_SQL

# duckdb.connect() from two threads at once, on 3.14t with PYTHON_GIL=0, aborts the process
# ("Critical nanobind error", or a segfault in _duckdb; DuckDB 2.0.0's cp314t build, 3 crashes in
# 3 tries of a two-thread loop, found by bench/pools.py): every connection of the lab is opened
# under this lock, one at a time (a connect takes about a millisecond), on every build.
CONNECT_LOCK = threading.Lock()


def connect(threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory connection limited to `threads` DuckDB worker threads."""
    with CONNECT_LOCK:
        con = duckdb.connect(":memory:")
    con.execute(f"SET threads={int(threads)}")
    return con


def run_query(rows: int, threads: int = 1) -> int:
    """Sum `rows` integers, the article's query: pure CPU inside DuckDB.

    How many rows a second depends on the machine and the interpreter, so the lab measures it
    (app/measure/calibrate.py) instead of assuming one; docs/calibration.md lists what was measured where.
    """
    con = connect(threads)
    try:
        return execute(con, rows)
    finally:
        con.close()


def set_deadline(con: duckdb.DuckDBPyConnection, deadline: float) -> None:
    """Make DuckDB stop the connection's next query at `deadline` (time.monotonic()), never before it.

    DuckDB counts whole milliseconds from a start of its own: rounded up, a query still stopped up to
    0.3 ms before the deadline here, so one millisecond more."""
    left_ms = math.ceil((deadline - time.monotonic()) * 1000) + 1
    con.execute(f"SET max_execution_time={max(1, left_ms)}")


def execute(con: duckdb.DuckDBPyConnection, rows: int) -> int:
    """Run the lab's query on an open connection and return its single value."""
    (value,) = con.execute(SQL, [int(rows)]).fetchone()
    return int(value)
