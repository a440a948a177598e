"""Small experiments behind `scripts/lab claims`, run inside a lab venv: `python -m app.experiments.claims NAME JSON`.

Each experiment prints exactly one result line on stdout (app/kernel/result_line.py); the host
driver (scripts/labctl/claims.py) reads only that line, so whatever else an interpreter prints (the
free-threaded build's nanobind "leaked instances" at exit, warnings) never reaches a verdict.

- `gil-import`: is the GIL on before and after importing a module (claim 4)?
- `thread-stop`: can another thread stop a long C call: an async exception from a timer thread
  versus the library's own interrupt (DuckDB's `con.interrupt()`), on DuckDB or on another
  workload of app/measure/workloads.py (sqlite3, numpy, the GIL-holding builtin, pyarrow) (claim 5).
- `pickling`: which ways of writing the timed function survive timeout-decorator's process
  fallback under fork, forkserver and spawn (claim 7).

The Celery claims' tasks are sent by the producer's sender (`python -m producer.send iterations`).
DuckDB is imported inside the experiments that need it: a forkserver or spawn child re-imports
this module and should stay cheap.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import types

import timeout_decorator  # pure Python, cheap; the decorated example below needs it at import

from app.kernel import result_line


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _facts() -> dict:
    import platform
    import sysconfig

    return {
        "python": platform.python_version(),
        "build": "nogil" if sysconfig.get_config_var("Py_GIL_DISABLED") else "gil",
        "default_start_method": multiprocessing.get_start_method(allow_none=True)
        or multiprocessing.get_context().get_start_method(),
        "PYTHON_GIL": os.environ.get("PYTHON_GIL"),
    }


# --- claim 4: importing an extension that is not marked free-threading-safe ----------------------


def gil_import(params: dict) -> dict:
    """Import `modules` in order; the GIL state before and after each, and the warnings raised."""
    import importlib
    import warnings

    facts = _facts()  # before anything else is imported
    before = _gil_enabled()
    steps = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in params["modules"]:
            module = importlib.import_module(name)
            steps.append({
                "module": name,
                "version": getattr(module, "__version__", None),
                "gil_enabled": _gil_enabled(),
            })
    return {
        **facts,
        "gil_before": before,
        "steps": steps,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught if "GIL" in str(w.message)],
    }


# --- claim 5: can a thread stop a long C call? --------------------------------------------------


def _async_raise(thread_id: int, exc_type: type) -> int:
    """What a watchdog thread can do to another thread in pure Python: schedule an exception."""
    import ctypes

    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


class WatchdogTimeout(Exception):
    """Raised in the main thread by the watchdog (via PyThreadState_SetAsyncExc)."""


def _timed(call, deadline: float, on_deadline) -> dict:
    """Run `call()` in this thread; a timer thread runs `on_deadline(main_thread_id)` after `deadline` s."""
    import threading

    main_id = threading.get_ident()
    fired: dict = {}
    cpu_start = time.process_time()
    start = time.monotonic()

    def watchdog():
        fired["at"] = time.monotonic() - start
        fired["returned"] = on_deadline(main_id)

    timer = threading.Timer(deadline, watchdog)
    timer.daemon = True
    timer.start()
    exc_type = None
    finished = False
    try:
        try:
            call()
            finished = True
            # An async exception lands at the next bytecode boundary: give it a few.
            for _ in range(1000):
                pass
        finally:
            timer.cancel()
            # A watchdog already running schedules its exception any moment: wait for it, so
            # that it lands here and not in whatever this process runs next.
            timer.join(5)
            for _ in range(1000):
                pass
    except BaseException as exc:  # noqa: BLE001 - what arrives is the measurement
        if isinstance(exc, KeyboardInterrupt):
            raise
        exc_type = _qualname(exc)
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_start
    timer.join(5)
    return {
        "elapsed": round(elapsed, 4),
        "cpu": round(cpu, 4),  # CPU the process used meanwhile: how much of the work got done, load or not
        "overshoot": round(elapsed - deadline, 4),
        "call_finished": finished,
        "exception_type": exc_type,
        "watchdog_ran_at": None if "at" not in fired else round(fired["at"], 4),
        "watchdog_late": None if "at" not in fired else round(fired["at"] - deadline, 4),
    }


def _spin(n: int) -> int:
    """A C call that holds the GIL throughout: builtin sum over a range (no eval-loop checks)."""
    return sum(range(n))


SPIN_PROBE_SECONDS = 0.08  # one probe call at least this long (as app/measure/calibrate.py times the query)
SPIN_PROBE_START = 1_000_000


def spin_rate() -> dict:
    """The builtin's own speed on this interpreter: items of `sum(range(n))` per second.

    Like `calibrate.measure` for the query: grow n until one call takes SPIN_PROBE_SECONDS,
    then the median of three calls of that size.
    """
    from app.measure import calibrate

    began = time.perf_counter()
    n, median = calibrate.probe(_spin, SPIN_PROBE_START, seconds=SPIN_PROBE_SECONDS, max_size=10**11)
    return {"items_per_second": round(n / median, 1), "probe_items": n, "probe_seconds": round(median, 6),
            "measured_seconds": round(time.perf_counter() - began, 3)}


def _workload_stop(params: dict) -> dict:
    """One workload of app/measure/workloads.py: an async exception from a watchdog thread, then its own interrupt if it has one."""
    import importlib

    from app.measure import calibrate, workloads
    from app import strategies
    from app.kernel import workload_axis

    name = params["workload"]
    facts = _facts()
    declared = workload_axis.WORKLOADS[name]
    out = {**facts, "workload": name, "module": declared.module, "unit": declared.unit, "stops": list(declared.stops)}
    try:
        importlib.import_module(declared.module)
    except ImportError as exc:  # the interpreter has no wheel for it: one line in the record
        return {**out, "import_error": f"{_qualname(exc)}: {exc}"[:200], "gil_enabled": _gil_enabled()}
    impl = workloads.get(name)
    calibration = calibrate.cached(1, workload=name)
    requested, target = params.get("rows"), float(params["seconds"])
    size = max(1, round(calibration.rows_per_second * target)) if requested is None else int(requested)

    handle = impl.connect(1)
    try:
        cpu_start, start = time.process_time(), time.monotonic()
        impl.execute(handle, size)
        alone, alone_cpu = round(time.monotonic() - start, 4), round(time.process_time() - cpu_start, 4)
        # the deadline falls a quarter into the call at most: an exception landing there shows as a
        # quarter of the call's CPU, one landing at its end as all of it
        deadline = round(min(float(params["deadline"]), alone / 4), 4)
        async_exc = _timed(lambda: impl.execute(handle, size), deadline, lambda tid: _async_raise(tid, WatchdogTimeout))
    finally:
        impl.close(handle)
    interrupt = None
    if strategies.supports("interrupt", name):  # the lab's own watchdog thread, as a worker's task runs it
        cpu_start = time.process_time()
        o = strategies.run("interrupt", size, deadline, workload=name)
        interrupt = {"outcome": o.outcome, "exception_type": o.exception_type,
                     "exception_message": o.exception_message, "elapsed": o.elapsed, "stopped": o.stopped,
                     "overshoot": round(o.elapsed - deadline, 4),
                     "stopped_after": None if o.stopped is None else round(o.stopped - deadline, 4),
                     "cpu": round(time.process_time() - cpu_start, 4)}
    return {
        **out,
        "library": calibration.library,
        "gil_enabled": _gil_enabled(),
        "rows": size,  # the workload's size, in `unit`s (the name `rows` as for DuckDB: the premise re-run sets it)
        "rows_requested": "auto" if requested is None else size,
        "query_seconds": target if requested is None else None,
        "expected_seconds": round(calibration.seconds_for(size), 3),
        "calibration": calibration.as_dict(),
        "deadline": deadline,
        "query_alone": alone,
        "query_alone_cpu": alone_cpu,
        "async_exc": async_exc,
        "interrupt": interrupt,
    }


def thread_stop(params: dict) -> dict:
    """Watchdog thread vs a long call: async exception and con.interrupt() on DuckDB, or on `workload`.

    `workload` (default duckdb) names a workload of app/kernel/workload_axis.py; any other than DuckDB
    is measured by `_workload_stop`, sized from its own calibration to `seconds`. DuckDB's sizing,
    on this interpreter: `rows` (an explicit count) or, when it is None (DUCKDB_ROWS=auto), as
    many rows as the query's measured speed (app/measure/calibrate.py) scans in `seconds`; with
    `spin_seconds` a GIL-holding builtin runs that long at its own measured rate too (the records
    made before the builtin was a workload of its own). The record states the calibrations, the
    sizes used and the durations expected, so a reader sees whether the premise held: the call
    must outlast the deadline, or the experiment measures nothing.
    """
    if params.get("workload", "duckdb") != "duckdb":
        return _workload_stop(params)
    import duckdb

    from app.measure import calibrate
    from app import query

    facts = _facts()
    deadline = float(params["deadline"])
    calibration = calibrate.cached(1)
    requested = params.get("rows")
    target = params.get("seconds")
    if requested is None:
        rows = calibration.rows_for(float(target))
    else:
        rows = int(requested)

    cpu_start, start = time.process_time(), time.monotonic()
    query.run_query(rows)
    query_alone = round(time.monotonic() - start, 4)
    query_alone_cpu = round(time.process_time() - cpu_start, 4)

    async_exc = _timed(lambda: query.run_query(rows), deadline, lambda tid: _async_raise(tid, WatchdogTimeout))

    con = query.connect(1)
    try:
        interrupt = _timed(lambda: query.execute(con, rows), deadline, lambda _tid: con.interrupt())
    finally:
        con.close()

    spin = _spin_stop(deadline, float(params["spin_seconds"])) if params.get("spin_seconds") else {}
    return {
        **facts,
        "workload": "duckdb",
        "gil_enabled": _gil_enabled(),
        "duckdb": duckdb.__version__,
        "rows": rows,
        "rows_requested": "auto" if requested is None else rows,
        "query_seconds": float(target) if requested is None else None,  # the target of an auto-sized query
        "expected_seconds": round(calibration.seconds_for(rows), 3),
        "calibration": calibration.as_dict(),
        "deadline": deadline,
        "query_alone": query_alone,
        "query_alone_cpu": query_alone_cpu,
        "async_exc": async_exc,
        "interrupt": interrupt,
        **spin,
    }


def _spin_stop(deadline: float, spin_seconds: float) -> dict:
    """The GIL-holding builtin, sized from its own measured rate to about `spin_seconds`, under an async exception."""
    rate = spin_rate()
    spin_n = max(1, int(rate["items_per_second"] * spin_seconds))
    cpu_start, start = time.process_time(), time.monotonic()
    _spin(spin_n)
    spin_alone = round(time.monotonic() - start, 4)
    spin_alone_cpu = round(time.process_time() - cpu_start, 4)
    spin_deadline = round(min(deadline, spin_alone / 4), 4)
    spin = _timed(lambda: _spin(spin_n), spin_deadline, lambda tid: _async_raise(tid, WatchdogTimeout))
    spin["deadline"] = spin_deadline
    return {
        "spin_calibration": rate,
        "spin_items": spin_n,
        "spin_expected_seconds": round(spin_n / rate["items_per_second"], 3),
        "spin_alone": spin_alone,
        "spin_alone_cpu": spin_alone_cpu,
        "spin_async_exc": spin,
    }


# --- claim 7: what the process fallback can pickle --------------------------------------------------


def sleep_for(seconds: float) -> float:
    """A top-level function, wrapped by timeout-decorator at call time (how app/strategies.py does it)."""
    time.sleep(seconds)
    return seconds


PICKLING_TIMEOUT = 2.0


# The decorator's documented usage, on a top-level def: the module attribute becomes the wrapper,
# so a child cannot get the original function back by pickling it by name.
@timeout_decorator.timeout(PICKLING_TIMEOUT, use_signals=False)
def decorated_sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _variants(timeout: float) -> dict:
    wrap = timeout_decorator.timeout(timeout, use_signals=False)

    def local_sleep(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    # A function only the parent has, e.g. one defined under `if __name__ == "__main__":`:
    # pickling by reference works in the parent, the child cannot find it.
    parent_only = types.FunctionType(sleep_for.__code__, globals(), "parent_only_sleep")
    parent_only.__qualname__ = "parent_only_sleep"
    globals()["parent_only_sleep"] = parent_only
    return {
        "top_level": wrap(sleep_for),
        "decorated_in_place": decorated_sleep,
        "nested": wrap(local_sleep),
        "lambda": wrap(lambda seconds: time.sleep(seconds)),
        "parent_only": wrap(parent_only),
    }


def pickling(params: dict) -> dict:
    """Call each variant with a short sleep (well inside its timeout) under each start method."""
    facts = _facts()
    work = float(params.get("work", 0.05))
    out = []
    for method in params["start_methods"]:
        multiprocessing.set_start_method(method, force=True)
        for name, fn in _variants(PICKLING_TIMEOUT).items():
            start = time.monotonic()
            try:
                fn(work)
                outcome, exc_type, message = "ok", None, None
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                outcome = "timeout" if isinstance(exc, timeout_decorator.TimeoutError) else "error"
                exc_type, message = _qualname(exc), str(exc)[:160]
            out.append({
                "start_method": method,
                "variant": name,
                "outcome": outcome,
                "exception_type": exc_type,
                "exception_message": message,
                "elapsed": round(time.monotonic() - start, 4),
            })
        multiprocessing.active_children()  # reap what finished
    return {**facts, "timeout": PICKLING_TIMEOUT, "work": work, "results": out}


EXPERIMENTS = {"gil-import": gil_import, "thread-stop": thread_stop, "pickling": pickling}


def main(argv: list[str] | None = None) -> int:
    return result_line.answer("app.experiments.claims", EXPERIMENTS, argv)


if __name__ == "__main__":
    # Run under the module's real name, so the functions a forkserver or spawn child unpickles
    # are `app.experiments.claims.<name>`, not `__main__.<name>`.
    from app.experiments import claims

    raise SystemExit(claims.main())
