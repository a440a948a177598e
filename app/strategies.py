"""The ways the lab times out the DuckDB query, one function each.

Every strategy runs `query.run_query` (or the same SQL) with a deadline and returns an
`Outcome`. What each leaves behind is not decided here: the task measures it with the probe.

- `process` / `process+cleanup`: timeout-decorator's multiprocessing fallback
  (`use_signals=False`), the article's baseline. On timeout it SIGTERMs the process and never
  joins it. `+cleanup` is applied by the task afterwards (see cleanup.py).
- `signals`: timeout-decorator with SIGALRM. DuckDB notices the pending signal between
  execution steps and raises its own error instead of `timeout_decorator.TimeoutError`.
- `interrupt`: a watchdog thread calls `con.interrupt()` on the query's connection.
- `deadline`: DuckDB's own `SET max_execution_time` (milliseconds); no thread, no process.
- `prefork-time-limit`: no decorator at all; Celery's prefork pool enforces
  `soft_time_limit` (SIGUSR1 -> SoftTimeLimitExceeded) and `time_limit` (the pool process is
  killed and replaced). The producer sends the limits with the message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

import duckdb
import timeout_decorator

from . import query


@dataclass(frozen=True)
class Outcome:
    outcome: str  # "ok" | "timeout" | "error"
    exception_type: str | None = None
    exception_message: str | None = None
    elapsed: float = 0.0  # seconds from the call to getting control back

    def as_dict(self) -> dict:
        return asdict(self)


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _is_timeout(strategy: str, exc: BaseException) -> bool:
    """Whether `exc` is the strategy's own way of saying "the deadline passed"."""
    if isinstance(exc, timeout_decorator.TimeoutError):
        return True
    if isinstance(exc, duckdb.InterruptException):
        return strategy in ("interrupt", "deadline", "signals", "prefork-time-limit")
    if strategy in ("signals", "prefork-time-limit"):
        # DuckDB turns a Python exception raised by a signal handler into an interrupted query.
        if isinstance(exc, RuntimeError) and "interrupt" in str(exc).lower():
            return True
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            return True
    return False


def _process(rows: int, timeout: float, threads: int) -> int:
    return timeout_decorator.timeout(timeout, use_signals=False)(query.run_query)(rows, threads)


def _signals(rows: int, timeout: float, threads: int) -> int:
    return timeout_decorator.timeout(timeout, use_signals=True)(query.run_query)(rows, threads)


def _interrupt(rows: int, timeout: float, threads: int) -> int:
    con = query.connect(threads)
    watchdog = threading.Timer(timeout, con.interrupt)
    watchdog.daemon = True
    watchdog.start()
    try:
        return query.execute(con, rows)
    finally:
        watchdog.cancel()
        con.close()


def _deadline(rows: int, timeout: float, threads: int) -> int:
    con = query.connect(threads)
    try:
        con.execute(f"SET max_execution_time={max(1, round(timeout * 1000))}")
        return query.execute(con, rows)
    finally:
        con.close()


def _plain(rows: int, timeout: float, threads: int) -> int:
    return query.run_query(rows, threads)


RUNNERS = {
    "process": _process,
    "process+cleanup": _process,
    "signals": _signals,
    "interrupt": _interrupt,
    "deadline": _deadline,
    "prefork-time-limit": _plain,
}


def run(strategy: str, rows: int, timeout: float, threads: int = 1) -> Outcome:
    """Run the query under `strategy` with a `timeout` in seconds and say how it ended."""
    runner = RUNNERS[strategy]
    start = time.monotonic()
    try:
        runner(rows, timeout, threads)
    except BaseException as exc:  # noqa: BLE001 - SoftTimeLimitExceeded is what we measure
        elapsed = time.monotonic() - start
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        outcome = "timeout" if _is_timeout(strategy, exc) else "error"
        return Outcome(outcome, _qualname(exc), str(exc)[:200], round(elapsed, 4))
    return Outcome("ok", elapsed=round(time.monotonic() - start, 4))
