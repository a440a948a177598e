"""How fast this interpreter runs the lab's query, and so how many rows make a query of N seconds.

Machines of the same kind differ in speed by about 3x (issue 11 measured 1e9 rows of this query
in 3 s on one of ours and 9 s on another; docs/calibration.md has the speeds measured here), and
readers' laptops differ more. A fixed row count that outlasts the timeout on one
machine finishes before it on the next, and the experiment silently measures nothing. So the
lab measures the query's speed (rows per second) on the interpreter and DuckDB settings that
will run it, once per worker (and, with a cache folder, once per run and build), and sizes the
query from a target duration: `DUCKDB_ROWS=auto` with `QUERY_SECONDS` (see `target_seconds`).

The probe is the lab's own query (`query.SQL`) on one connection: a warm-up, then the row count
grown until one call takes PROBE_SECONDS, then the median of PROBE_REPEATS calls of that size:
well under a second in all (0.35-0.5 s measured here with both cores busy; `measured_seconds`).

Every other workload (app/measure/workloads.py: sqlite3, numpy, the GIL-holding builtin, pyarrow) is
measured the same way on its own handle, from its own first size: `measure(threads, workload)`,
`cached(threads, folder, workload)`; `rows_per_second` is then its units (`unit`) per second.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..kernel import defaults

PROBE_SECONDS = 0.08  # one probe call at least this long: timer and start-up noise < 1 %
PROBE_REPEATS = 3  # median of this many calls of the final size
PROBE_START_ROWS = 1_000_000  # DuckDB's first size (app/measure/workloads.py Impl.probe_start)
PROBE_MAX_ROWS = 10**10  # a machine this fast would be 100x ours: stop growing anyway


@dataclass(frozen=True)
class Calibration:
    """The query's measured speed on one interpreter with one DuckDB thread setting."""

    rows_per_second: float
    probe_rows: int  # rows of each timed probe call
    probe_seconds: float  # median time of those calls
    threads: int  # DuckDB threads the probe (and the lab's query) uses
    python: str
    build: str
    duckdb: str
    measured_seconds: float  # what the whole calibration cost
    source: str = "measured"  # "measured" here, or "cached" (read from the run's cache folder)
    workload: str = "duckdb"  # app/kernel/workload_axis.py; rows_per_second counts its `unit`s
    unit: str = "rows"
    library: str = ""  # the workload's library and version, when it is not DuckDB ("sqlite 3.40.1")

    def rows_for(self, seconds: float) -> int:
        """Rows of a query that runs about `seconds` at this speed, within DUCKDB_ROWS_RANGE."""
        lo, hi = defaults.DUCKDB_ROWS_RANGE
        return int(min(hi, max(lo, round(self.rows_per_second * seconds))))

    def seconds_for(self, rows: int) -> float:
        """How long a query of `rows` rows is expected to run at this speed."""
        return rows / self.rows_per_second

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and summaries."""
        if self.workload != "duckdb":
            return (f"{self.workload}: {self.rows_per_second / 1e6:.3g}M {self.unit}/s on CPython {self.python} "
                    f"({self.build} build, {self.library}, threads={self.threads}; probe {self.probe_rows:,} "
                    f"{self.unit} in {self.probe_seconds * 1000:.0f} ms, {self.source})")
        return (f"{self.rows_per_second / 1e6:.0f}M rows/s on CPython {self.python} ({self.build} build, "
                f"duckdb {self.duckdb}, threads={self.threads}; probe {self.probe_rows:,} rows in "
                f"{self.probe_seconds * 1000:.0f} ms, {self.source})")


def target_seconds(timeout: float, settle_seconds: float, query_seconds: float | None = None) -> float:
    """How long the lab's query should run: `query_seconds` when given, else the auto target.

    Auto: QUERY_TIMEOUTS x the timeout (10 s at the default 0.5 s), and at least
    QUERY_BEYOND_SETTLE seconds past the end of the settle window. Under `fork` a timed-out
    child keeps running the query to its end, so with this target it is still running at
    every snapshot: right after the call, after settling, and at the next iterations' snapshots
    (each iteration takes about timeout + settle, 1 s at the defaults).
    """
    if query_seconds is not None:
        return query_seconds
    return max(defaults.QUERY_TIMEOUTS * timeout, timeout + settle_seconds + defaults.QUERY_BEYOND_SETTLE)


def probe(call, start: int, seconds: float = PROBE_SECONDS, max_size: int = PROBE_MAX_ROWS,
          repeats: int = PROBE_REPEATS) -> tuple[int, float]:
    """The size at which one `call(size)` takes at least `seconds`, and the median time of `repeats`
    calls of it: a warm-up call of `start` (first-call costs stay out of the rate), then the size
    grown from `start` (at most 10x per step, so a noisy short call cannot overshoot far), capped
    at `max_size`. Every speed the lab measures is one of these: the query, each workload, the
    builtin of claim 5, the payoff bench's Python step."""
    call(start)
    size = start
    while True:
        t = time.perf_counter()
        call(size)
        took = time.perf_counter() - t
        if took >= seconds or size >= max_size:
            break
        # aim a little past the target
        size = min(max_size, int(size * min(10.0, max(1.5, 1.2 * seconds / max(took, 1e-4)))))
    times = [took]
    for _ in range(repeats - 1):
        t = time.perf_counter()
        call(size)
        times.append(time.perf_counter() - t)
    return size, statistics.median(times)


def measure(threads: int = 1, workload: str = "duckdb") -> Calibration:
    """Time the lab's query (or `workload`'s call, app/measure/workloads.py) on this interpreter now
    (well under a second): the probe on one open handle, from the workload's first size."""
    import platform

    from ..kernel import interpreter
    from . import workloads

    impl = workloads.get(workload)
    began = time.perf_counter()
    handle = impl.connect(threads)
    try:
        size, median = probe(lambda n: impl.execute(handle, n), impl.probe_start)
    finally:
        impl.close(handle)
    if workload == "duckdb":  # DuckDB's calibration names its version; the others, their library's
        library = {"duckdb": impl.version()}
    else:
        name = "python" if workload == "builtin" else impl.declared.module.replace("sqlite3", "sqlite")
        library = {"duckdb": "", "workload": workload, "unit": impl.unit, "library": f"{name} {impl.version()}"}
    return Calibration(
        rows_per_second=round(size / median, 1),
        probe_rows=size,
        probe_seconds=round(median, 6),
        threads=threads,
        python=platform.python_version(),
        build=interpreter.build_flavour(),
        measured_seconds=round(time.perf_counter() - began, 3),
        **library,
    )


_CACHE: dict[tuple[str, int], Calibration] = {}


def _cache_file(folder: Path, threads: int, workload: str = "duckdb") -> Path:
    import platform

    from ..kernel import interpreter

    if workload != "duckdb":
        from . import workloads

        version = workloads.get(workload).version()
        return folder / (f"calibration-{workload}{version}-{interpreter.build_flavour()}-{platform.python_version()}"
                         f"-t{threads}.json")
    import duckdb

    return folder / f"calibration-{interpreter.build_flavour()}-{platform.python_version()}-duckdb{duckdb.__version__}-t{threads}.json"


def cached(threads: int = 1, folder: str | os.PathLike | None = None, workload: str = "duckdb") -> Calibration:
    """The calibration for `threads` (and `workload`), measured once per process.

    With `folder` (CALIBRATION_DIR: a native run's work folder), every worker of one build in
    the run shares the first measurement, so gil and gil-clean size their queries alike. The
    first writer wins: a file is published by hard link, which fails if another worker was first.
    """
    key = (workload, threads)
    if key in _CACHE:
        return _CACHE[key]
    calibration = None
    if folder is not None:
        path = _cache_file(Path(folder), threads, workload)
        if path.exists():
            calibration = _read(path)
        else:
            calibration = _publish(path, measure(threads, workload))
    _CACHE[key] = calibration or measure(threads, workload)
    return _CACHE[key]


def _read(path: Path) -> Calibration:
    return Calibration(**{**json.loads(path.read_text()), "source": "cached"})


def _publish(path: Path, calibration: Calibration) -> Calibration:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(calibration.as_dict(), out)
        os.link(tmp, path)
        return calibration
    except FileExistsError:
        return _read(path)
    finally:
        os.unlink(tmp)


def reset() -> None:
    """Forget this process's measurements (tests, and the benchmark between phases)."""
    _CACHE.clear()
