"""The long C calls the lab times out, one implementation each (declared in app/kernel/workload_axis.py).

Every workload is sized the way the DuckDB query is (app/measure/calibrate.py): one integer `size` whose
run time grows linearly with it, measured on the interpreter that runs it, never fixed. It has
the same life cycle as a DuckDB connection, so every strategy of app/strategies.py runs any of
them: `connect(threads)` gives a handle (a connection, or the call's inputs), `execute(handle,
size)` is the one long C call, `close(handle)`. Its in-process stops, if any:

- `interrupt(handle)`: what a watchdog thread calls at the deadline (`con.interrupt()`);
- `arm_deadline(handle, deadline)` / `disarm_deadline(handle)`: the library's own time limit.

`usable(handle)` says whether the handle still works after a timeout (None: there is none).
`timed_work` is the process strategies' target: top-level, so forkserver and spawn pickle it by
reference (a workload travels by name).

What was measured on which interpreter (does a stop work, does the call release the GIL, does
the import turn the GIL back on on 3.14t) is in docs/workloads.md, from bench/workloads.py.
"""

from __future__ import annotations

import signal
import threading
import time

from ..kernel.axes import Sign
from ..kernel.workload_axis import WORKLOADS, Workload

# sqlite3: Connection.interrupt() and a progress handler that returns non-zero both end the
# statement with this; the same class is raised for real errors ("database is locked", "no such
# table"), so only the message tells a timeout apart
SQLITE_INTERRUPTED = Sign("sqlite3.OperationalError", says="interrupted")
# pyarrow: a stop token that was honoured (the SIGINT its signal handler turned into a stop)
ARROW_CANCELLED = Sign("pyarrow.lib.ArrowCancelled")


class LabInterrupt(Exception):
    """Raised by the SIGINT handler the pyarrow workload installs while it runs (its interrupt)."""


LAB_INTERRUPT = Sign("app.measure.workloads.LabInterrupt")


class Impl:
    """How one workload is sized, opened, run, stopped and closed (subclasses below)."""

    name = ""
    probe_start = 1_000_000  # calibration's first size (DuckDB's: calibrate.PROBE_START_ROWS)
    signs: tuple[Sign, ...] = ()  # how its own stops show, beyond the strategy's (axes.Strategy.signs)

    @property
    def declared(self) -> Workload:
        return WORKLOADS[self.name]

    @property
    def unit(self) -> str:
        return self.declared.unit  # what `size` counts

    def version(self) -> str:
        raise NotImplementedError

    def connect(self, threads: int = 1):
        return None

    def execute(self, handle, size: int) -> int:
        raise NotImplementedError

    def close(self, handle) -> None:
        pass

    def interrupt(self, handle) -> None:
        raise NotImplementedError(f"{self.name} has no interrupt")

    def arm_deadline(self, handle, deadline: float) -> None:
        raise NotImplementedError(f"{self.name} has no deadline of its own")

    def disarm_deadline(self, handle) -> None:
        pass

    def usable(self, handle) -> bool | None:
        """After a stop: does a small call on the same handle still give the right answer (None: no handle)."""
        return None

    def is_timeout(self, exc: BaseException) -> bool:
        return any(sign.matches(exc) for sign in self.signs)

    def run(self, size: int, threads: int = 1) -> int:
        """The call with no timeout at all: open, execute, close."""
        handle = self.connect(threads)
        try:
            return self.execute(handle, size)
        finally:
            self.close(handle)


class Interruptible:
    """What the watchdog holds for a workload whose handle is not itself interruptible: `interrupt()`."""

    def __init__(self, impl: Impl, handle) -> None:
        self.impl, self.handle = impl, handle

    def interrupt(self) -> None:
        self.impl.interrupt(self.handle)


class DuckDB(Impl):
    """The article's query (app/query.py), unchanged."""

    name = "duckdb"

    def version(self) -> str:
        import duckdb

        return duckdb.__version__

    def connect(self, threads: int = 1):
        from .. import query

        return query.connect(threads)

    def execute(self, handle, size: int) -> int:
        from .. import query

        return query.execute(handle, size)

    def close(self, handle) -> None:
        handle.close()

    def interrupt(self, handle) -> None:
        handle.interrupt()

    def arm_deadline(self, handle, deadline: float) -> None:
        from .. import query

        query.set_deadline(handle, deadline)

    def usable(self, handle) -> bool:
        from .. import query

        return query.execute(handle, 1000) == query.execute(handle, 1000)


class SQLite(Impl):
    """sqlite3 (stdlib): a recursive CTE that counts to `size` and sums, one sqlite3_step with the GIL released."""

    name = "sqlite"
    probe_start = 20_000
    SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT sum(x) FROM c"
    PROGRESS_STEPS = 1000  # SQLite VM instructions between two calls of the deadline's progress handler
    signs = (SQLITE_INTERRUPTED,)

    def version(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version

    def connect(self, threads: int = 1):
        import sqlite3

        # check_same_thread=False: CONNECTION=reused keeps one per thread anyway; interrupt() is
        # allowed from any thread regardless
        return sqlite3.connect(":memory:", check_same_thread=False)

    def execute(self, handle, size: int) -> int:
        (value,) = handle.execute(self.SQL, (int(size),)).fetchone()
        return int(value or 0)

    def close(self, handle) -> None:
        handle.close()

    def interrupt(self, handle) -> None:
        handle.interrupt()

    def arm_deadline(self, handle, deadline: float) -> None:
        clock = time.monotonic
        # called with the GIL taken back every PROGRESS_STEPS instructions; non-zero ends the statement
        handle.set_progress_handler(lambda: clock() >= deadline, self.PROGRESS_STEPS)

    def disarm_deadline(self, handle) -> None:
        handle.set_progress_handler(None, 0)

    def usable(self, handle) -> bool:
        return self.execute(handle, 1000) == 500500


class NumPy(Impl):
    """numpy.correlate of `size` + WINDOW samples with a WINDOW-sample kernel: one C call of BLAS dot products."""

    name = "numpy"
    probe_start = 2_000
    WINDOW = 4096  # fits the L2 cache: the time is linear in size

    def version(self) -> str:
        import numpy

        return numpy.__version__

    def execute(self, handle, size: int) -> int:
        import numpy as np

        signal_ = np.ones(int(size) + self.WINDOW - 1)
        kernel = np.ones(self.WINDOW)
        out = np.correlate(signal_, kernel, mode="valid")  # releases the GIL, checks no signal
        return int(out.shape[0])


def spin(size: int) -> int:
    """sum(range(size)): the builtin's C loop, which neither releases the GIL nor checks for signals."""
    return sum(range(int(size)))


class Builtin(Impl):
    """sum(range(size)) (app/experiments/claims.py's claim 5 uses the same): the GIL held throughout."""

    name = "builtin"

    def version(self) -> str:
        import platform

        return platform.python_version()

    def execute(self, handle, size: int) -> int:
        return spin(size)


class PyArrow(Impl):
    """pyarrow.compute.sort_indices of `size` random doubles; its interrupt is the SIGINT Arrow's stop token listens to."""

    name = "pyarrow"
    probe_start = 100_000
    signs = (ARROW_CANCELLED, LAB_INTERRUPT)

    def version(self) -> str:
        import pyarrow

        return pyarrow.__version__

    def connect(self, threads: int = 1):
        import pyarrow

        pyarrow.set_cpu_count(max(1, int(threads)))
        pyarrow.enable_signal_handlers(True)
        return _SigintHandle()

    def execute(self, handle, size: int) -> int:
        import pyarrow.compute as pc

        values = pc.random(int(size), initializer=0)
        with handle:
            indices = pc.sort_indices(values)
        return len(indices)

    def interrupt(self, handle) -> None:
        handle.fire()

    def usable(self, handle) -> bool:
        import pyarrow.compute as pc

        return self.execute(handle, 1000) == 1000 and pc.sum(pc.random(10, initializer=1)).is_valid


class _SigintHandle:
    """The pyarrow workload's handle: while a call runs, SIGINT (from `fire`, once) raises LabInterrupt.

    Arrow's stop token is wired to SIGINT only where pyarrow opens a SignalStopHandler (CSV reads,
    Flight), and only for a signal whose Python handler is not the default: this handler is what
    it would hand the stop to. Outside the main thread no handler can be installed: fire() then
    does nothing, which the matrix shows as no stop.
    """

    def __init__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()
        self.fired = self.active = False
        self.previous = None

    def __enter__(self):
        self.fired = False
        if self.main:
            self.previous = signal.signal(signal.SIGINT, _raise_lab_interrupt)
            self.active = True
        return self

    def __exit__(self, *exc) -> None:
        if self.main:
            self.active = False
            signal.signal(signal.SIGINT, self.previous)

    def fire(self) -> None:
        if self.active and not self.fired:
            self.fired = True
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def _raise_lab_interrupt(signum, frame):
    raise LabInterrupt("SIGINT at the deadline")


IMPLS: dict[str, Impl] = {impl.name: impl for impl in (DuckDB(), SQLite(), NumPy(), Builtin(), PyArrow())}
assert set(IMPLS) == set(WORKLOADS), "app/kernel/workload_axis.py and app/measure/workloads.py disagree"


def get(name: str) -> Impl:
    """The implementation of workload `name` (a key of app/workload_axis.WORKLOADS)."""
    try:
        return IMPLS[name]
    except KeyError:
        raise ValueError(f"workload={name!r}: expected one of {', '.join(IMPLS)}") from None


def has_stop(workload: str, strategy: str) -> bool:
    """Whether `strategy` can run on `workload`: every strategy but interrupt and deadline, which need a declared stop."""
    return strategy not in ("interrupt", "deadline") or strategy in WORKLOADS[workload].stops


def other_thread_speed(workload: str, size: int) -> float:
    """How fast another Python thread counts while the call runs here, as a fraction of its speed alone.

    About 0 when the call holds the GIL (the builtin on a GIL build), near 1 when it releases it
    or there is no GIL (less on a busy machine: the thread shares the cores with the call)."""
    impl = get(workload)

    def count(seconds: float | None, stop: threading.Event, out: list) -> None:
        n, end = 0, None if seconds is None else time.perf_counter() + seconds
        while not stop.is_set() and (end is None or time.perf_counter() < end):
            for _ in range(1000):
                pass
            n += 1
        out.append(n)

    alone: list = []
    t = time.perf_counter()
    count(0.2, threading.Event(), alone)
    alone_rate = alone[0] / (time.perf_counter() - t)
    stop, during = threading.Event(), []
    handle = impl.connect(1)
    try:
        thread = threading.Thread(target=count, args=(None, stop, during), name="lab-gil-probe")
        t = time.perf_counter()
        thread.start()
        impl.execute(handle, size)
        took = time.perf_counter() - t
        stop.set()
        thread.join()
    finally:
        impl.close(handle)
    return round(during[0] / max(1e-9, took) / alone_rate, 3)


def timed_work(workload: str, size: int, threads: int = 1) -> tuple[int, float]:
    """The workload's call (open, execute, close) and how long it took, in the task process."""
    t = time.perf_counter()
    value = get(workload).run(size, threads)
    return value, time.perf_counter() - t
