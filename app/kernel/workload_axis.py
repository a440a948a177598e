"""The workload axis, one declaration per C call the lab times out (issue 15).

Standard library only, like app/kernel/axes.py (which takes the names for its queue grammar from here):
the producer and the host scripts read it without DuckDB, numpy or pyarrow. The implementation
of each workload (how it is sized, run, interrupted, given a deadline) is in app/measure/workloads.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """One long C call."""

    name: str
    summary: str  # one line, for the docs' table and --help
    module: str  # what the worker imports for it (whether it turns the GIL back on on 3.14t is measured)
    package: str | None  # the pip distribution that provides it; None: the standard library
    # the in-process stops it has, by strategy name of app/kernel/axes.py: `interrupt` (another thread
    # asks the call to stop) and `deadline` (the library's own time limit). `signals`, `process`,
    # `process+cleanup` and `prefork-time-limit` need nothing from the library and run on every
    # workload; app.strategies.run refuses interrupt or deadline on a workload without it
    # (strategies.NoSuchStop) instead of running the call with no stop at all.
    stops: tuple[str, ...] = ()
    unit: str = "rows"  # what its size counts (calibrated like DUCKDB_ROWS: app/measure/calibrate.py)


WORKLOAD_LIST = (
    Workload("duckdb", "DuckDB: a long aggregate over range(rows) (the article's query)", "duckdb", "duckdb",
             stops=("interrupt", "deadline")),
    Workload("sqlite", "sqlite3 (stdlib): a long recursive-CTE count", "sqlite3", None,
             stops=("interrupt", "deadline")),
    Workload("numpy", "numpy.correlate: one C call of BLAS dot products, no interrupt hook", "numpy", "numpy",
             unit="outputs"),
    Workload("builtin", "sum(range(n)): a builtin's C loop, which holds the GIL and checks no signal", "builtins", None,
             unit="items"),
    Workload("pyarrow", "pyarrow.compute.sort_indices; interrupt: the SIGINT Arrow's stop token listens to, where "
             "one is open", "pyarrow", "pyarrow", stops=("interrupt",), unit="values"),
)
WORKLOADS = {w.name: w for w in WORKLOAD_LIST}
WORKLOAD_NAMES = tuple(WORKLOADS)
DEFAULT_WORKLOAD = "duckdb"
