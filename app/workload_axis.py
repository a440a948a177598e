"""The workload axis, one declaration per C call the lab times out (issue 15).

Standard library only, like app/axes.py (which takes the names for its queue grammar from here):
the producer and the host scripts read it without DuckDB, numpy or pyarrow. The implementation
of each workload (how it is sized, run, interrupted, given a deadline) is in app/workloads.py.
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
    # the in-process stops it has, by strategy name of app/axes.py: `interrupt` (another thread
    # asks the call to stop) and `deadline` (the library's own time limit)
    stops: tuple[str, ...] = ()


WORKLOAD_LIST = (
    Workload("duckdb", "DuckDB: a long aggregate over range(rows) (the article's query)", "duckdb", "duckdb",
             stops=("interrupt", "deadline")),
    Workload("sqlite", "sqlite3 (stdlib): a long recursive-CTE count", "sqlite3", None,
             stops=("interrupt", "deadline")),
    Workload("numpy", "numpy: a long sort, which releases the GIL and has no interrupt hook", "numpy", "numpy"),
    Workload("builtin", "a builtin that holds the GIL and checks no signal for seconds", "builtins", None),
    Workload("pyarrow", "pyarrow.compute: a long kernel, with its stop token where one is honoured", "pyarrow",
             "pyarrow", stops=("interrupt",)),
)
WORKLOADS = {w.name: w for w in WORKLOAD_LIST}
WORKLOAD_NAMES = tuple(WORKLOADS)
DEFAULT_WORKLOAD = "duckdb"
