"""The ways the lab times out the DuckDB query (or another workload's C call), one runner function each.

What each strategy is (its pool, how its timeout shows, whether it starts processes or cleans
up) is declared once in app/kernel/axes.py; `Strategy.runner` names the function here.

Every strategy runs the same work as `query.run_query` (a fresh in-memory connection, the
query, close) with a deadline of `timeout` seconds from one moment, its `Clock`, and returns an
`Outcome` whose times count from that moment too. Outside a task the clock starts at the call;
inside one, at the task's start in the worker (`TASK_CLOCK`, set by app/celery.py's signal hooks:
the prefork pool process's accept, which Celery's own time limits count from, or `task_prerun`
in the solo pool), so every strategy gets the same budget from the same moment and the task's
own work before the call (its baseline snapshots) counts against it.
What each leaves behind is not decided here: the task measures it with the probe.

`connection` (CONNECTION): `per-call`, the article's (a fresh connection opened and closed by
each call), or `reused`, one connection per process, thread and strategy, kept open as a real
worker keeps its own: control comes back without the close (milliseconds after an interrupted
query: docs/strategies.md).
The process strategies refuse `reused`: their connection lives in a task process started per
call, which it cannot outlive.

- `process` / `process+cleanup`: timeout-decorator's multiprocessing fallback
  (`use_signals=False`), the article's baseline. On timeout it SIGTERMs the process and never
  joins it. `+cleanup` is applied by the task afterwards (see cleanup.py). The start method is
  multiprocessing's default one (START_METHOD, or the queue's `.fork|.forkserver|.spawn`).
- `signals`: timeout-decorator with SIGALRM. DuckDB notices the pending signal between
  execution steps and raises its own error instead of `timeout_decorator.TimeoutError`.
  Main thread only (Celery's solo pool runs tasks there).
- `interrupt`: a watchdog thread (one per process) calls `con.interrupt()` on the query's connection.
- `deadline`: DuckDB's own `SET max_execution_time` (milliseconds); no thread, no process.
- `prefork-time-limit`: no decorator at all; Celery's prefork pool enforces
  `soft_time_limit` (SIGUSR1 -> SoftTimeLimitExceeded) and `time_limit` (the pool process is
  killed and replaced). The producer sends the limits with the message.

`interrupt` and `deadline` count the time spent opening the connection against the budget, so
their deadline is the caller's deadline, not "timeout seconds after the connection is open";
`signals` and `process` give timeout-decorator what is left of the budget when they start it.

`workload` (app/kernel/workload_axis.py, implemented in app/measure/workloads.py): the C call, DuckDB's query by
default. `rows` is then the workload's calibrated size, the connection its handle, `interrupt`
its watchdog's call (sqlite3's `Connection.interrupt()`) and `deadline` its own time limit
(sqlite3's progress handler). A workload without the stop a strategy needs (numpy, the builtin:
no interrupt, no deadline) makes `run` raise `NoSuchStop` before anything runs: a call with no
stop at all must not pass for a measured strategy. `supports(strategy, workload)` asks first.
"""

from __future__ import annotations

import atexit
import heapq
import os
import threading
import time
from dataclasses import asdict, dataclass, field

import timeout_decorator

from .kernel import axes
from .measure import workloads
from .kernel.settings import CONNECTIONS
from .kernel.workload_axis import DEFAULT_WORKLOAD

# What a clock's start is (Outcome.clock_source, the records' `clock_source`).
CLOCK_SOURCES = {
    "call": "app.strategies.run was called (no task around it: the benchmark, the tests)",
    "pool-accept": "the prefork pool process accepted the task (billiard's ACK timestamp, which Celery's "
                   "soft and hard time limits count from)",
    "task-prerun": "Celery's task_prerun signal in the thread that runs the task (the solo, threads and gevent pools)",
}


@dataclass(frozen=True)
class Clock:
    """The moment a call's deadline and all its times count from."""

    start: float  # time.monotonic(): CLOCK_MONOTONIC, one clock for every process on Linux
    source: str  # a key of CLOCK_SOURCES


class TaskClock:
    """The start of the task running in this process, for `run(clock=TASK_CLOCK.take())`.

    app/celery.py's hooks drive it: in a prefork pool process billiard stamps each task it accepts
    with `accept` (its ACK's timestamp: Celery's time limits start when the parent reads that ACK,
    so never before it); `prerun` (task_prerun) makes the task's clock of that stamp, or of the
    moment itself when there is none (the solo, threads and gevent pools). Each start is taken
    once. Per thread: the threads pool runs task_prerun and the task in each of its threads (per
    greenlet under gevent, whose monkey-patching makes threading.local greenlet-local).
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def accept(self) -> float:
        self._local.accepted = time.monotonic()
        return self._local.accepted

    def prerun(self) -> None:
        accepted, self._local.accepted = getattr(self._local, "accepted", None), None
        self._local.started = (Clock(accepted, "pool-accept") if accepted is not None
                               else Clock(time.monotonic(), "task-prerun"))

    def take(self) -> Clock | None:
        started, self._local.started = getattr(self._local, "started", None), None
        return started


TASK_CLOCK = TaskClock()


@dataclass(frozen=True)
class Outcome:
    outcome: str  # "ok" | "timeout" | "error"
    exception_type: str | None = None
    exception_message: str | None = None
    elapsed: float = 0.0  # seconds from the clock's start to getting control back
    # Seconds from the clock's start to the moment the query itself stopped (returned or raised),
    # before the strategy's own clean-up (closing the connection). None when the strategy cannot see it.
    stopped: float | None = None
    # Seconds the work itself took (connect, query, close; in the task process for `process`),
    # known when the call finished in time: elapsed - called_after - work is what the strategy
    # added to the call.
    work: float | None = None
    clock_source: str = "call"  # what the clock's start is: a key of CLOCK_SOURCES
    called_after: float = 0.0  # seconds from the clock's start to the call (the task's own work before it)
    connection: str = "per-call"  # CONNECTION: per-call | reused
    started_at: float = field(default=0.0, compare=False)  # the clock's start, time.monotonic()

    def as_dict(self) -> dict:
        out = asdict(self)
        out["clock_start"] = round(out.pop("started_at"), 6)  # time.monotonic(), as every process on the host reads it
        return out


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class NoSuchStop(ValueError):
    """`run` was asked for a strategy (interrupt, deadline) whose stop the workload does not have."""


def supports(strategy: str, workload: str = DEFAULT_WORKLOAD) -> bool:
    """Whether `run(strategy, ..., workload=workload)` runs (False: it raises NoSuchStop)."""
    return workloads.has_stop(workload, strategy)


class Connections:
    """The connections CONNECTION=reused keeps open: one per strategy, DuckDB thread count, thread and workload.

    Never shared between threads (a DuckDB connection is not for concurrent use), never closed by
    a call; after a fork the child leaves its copies alone (their DuckDB threads are the parent's).
    """

    def __init__(self) -> None:
        self._open: dict[tuple, object] = {}
        self._forked_away: list[dict] = []

    @staticmethod
    def _key(strategy: str, threads: int, workload: str) -> tuple:
        return (strategy, threads, threading.get_ident(), workload)

    def get(self, strategy: str, threads: int, workload: str = DEFAULT_WORKLOAD):
        key = self._key(strategy, threads, workload)
        con = self._open.get(key)
        if con is None:
            con = self._open[key] = workloads.get(workload).connect(threads)
        return con

    def discard(self, strategy: str, threads: int, workload: str = DEFAULT_WORKLOAD) -> None:
        """Close this thread's connection (after an error that was no timeout): the next call opens another."""
        con = self._open.pop(self._key(strategy, threads, workload), None)
        if con is not None:
            workloads.get(workload).close(con)

    def close_all(self) -> None:
        """At exit: close this process's connections before DuckDB's module is torn down."""
        while self._open:
            key, con = self._open.popitem()
            workloads.get(key[3]).close(con)

    def _after_fork(self) -> None:
        self._forked_away.append(self._open)  # kept referenced: no destructor runs in the child
        self._open = {}


REUSED = Connections()
os.register_at_fork(after_in_child=REUSED._after_fork)
atexit.register(REUSED.close_all)


class _Marks:
    """What a runner saw from inside: when the query stopped, how long the work itself took."""

    def __init__(self, strategy: str = "", connection: str = "per-call", workload: str = DEFAULT_WORKLOAD) -> None:
        self.stopped: float | None = None
        self.work = 0.0
        self.strategy, self.reused = strategy, connection == "reused"
        self.workload, self.impl = workload, workloads.get(workload)

    def stop(self) -> None:
        if self.stopped is None:
            self.stopped = time.monotonic()

    def connect(self, threads: int):
        t = time.perf_counter()
        con = REUSED.get(self.strategy, threads, self.workload) if self.reused else self.impl.connect(threads)
        self.work += time.perf_counter() - t
        return con

    def close(self, con) -> None:
        if self.reused:
            return  # the worker keeps it for the next call
        t = time.perf_counter()
        self.impl.close(con)
        self.work += time.perf_counter() - t


def _left(start: float, timeout: float) -> float:
    """What is left of the budget now, for timeout-decorator (which starts its own timer; 0 would mean none)."""
    return max(0.001, start + timeout - time.monotonic())


def _query(con, rows: int, marks: _Marks) -> int:
    t = time.perf_counter()
    try:
        return marks.impl.execute(con, rows)
    finally:
        marks.stop()
        marks.work += time.perf_counter() - t


def _process(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    try:
        # The article's call. The target is top-level (forkserver and spawn pickle it by reference);
        # the workload travels by name: for DuckDB, app/query.py's query in a fresh connection.
        limited = timeout_decorator.timeout(_left(start, timeout), use_signals=False)
        value, marks.work = limited(workloads.timed_work)(marks.workload, rows, threads)
        return value
    finally:
        marks.stop()  # the decorator gave up (or got the value): that is all the caller sees


def _signals(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    def call() -> int:
        con = marks.connect(threads)
        try:
            return _query(con, rows, marks)
        finally:
            marks.close(con)

    return timeout_decorator.timeout(_left(start, timeout), use_signals=True)(call)()


class Watchdog:
    """One daemon thread per process that interrupts connections whose deadline passed.

    Starting a `threading.Timer` per call costs a thread start (the caller waits until the new
    thread runs: milliseconds on a busy machine); arming this one is a heap push and a notify.
    """

    REPEAT = 0.005  # seconds between interrupts of a connection whose deadline passed
    SLICE = 0.01  # longest sleep between two looks at the deadlines

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, con) -> list:
        """Interrupt `con` (anything with `interrupt()`) at `deadline` (time.monotonic()) unless disarmed before."""
        entry = [con]  # emptied by disarm
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lab-interrupt-watchdog", daemon=True)
                self._thread.start()
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, entry))
            if self._heap[0][2] is entry:
                self._cond.notify()
        return entry

    def disarm(self, entry: list) -> None:
        with self._cond:  # after this the watchdog never touches the connection
            entry.clear()

    def _loop(self) -> None:
        with self._cond:
            while True:
                while self._heap and not self._heap[0][2]:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    # Sleep in short slices instead of one timed wait on the condition: on the
                    # free-threaded build a long timed wait of this thread woke up to ~150 ms
                    # late while the query ran (time.sleep did not). A new, earlier deadline is
                    # seen within one slice.
                    self._cond.release()
                    try:
                        time.sleep(min(left, self.SLICE))
                    finally:
                        self._cond.acquire()
                    continue
                _, _, entry = heapq.heappop(self._heap)
                entry[0].interrupt()  # under the lock: disarm (and so close) waits for it
                # DuckDB drops an interrupt that arrives before the query started (the deadline
                # passed while connecting): keep interrupting until the caller disarms.
                self._seq += 1
                heapq.heappush(self._heap, (time.monotonic() + self.REPEAT, self._seq, entry))

    def _after_fork(self) -> None:
        self._cond = threading.Condition()
        self._heap, self._thread = [], None


WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG._after_fork)


def _interrupt(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    con = marks.connect(threads)
    entry = WATCHDOG.arm(start + timeout, workloads.Interruptible(marks.impl, con))  # DuckDB: con.interrupt()
    try:
        return _query(con, rows, marks)
    finally:
        WATCHDOG.disarm(entry)
        marks.close(con)


def _deadline(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    con = marks.connect(threads)
    try:
        marks.impl.arm_deadline(con, start + timeout)  # DuckDB: SET max_execution_time; sqlite3: a progress handler
        try:
            return _query(con, rows, marks)
        finally:
            marks.impl.disarm_deadline(con)
    finally:
        marks.close(con)


def _plain(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    con = marks.connect(threads)
    try:
        return _query(con, rows, marks)
    finally:
        marks.close(con)


# ---- the timeout libraries from PyPI (docs/libraries.md), each called as its documentation shows ----


def _pebble(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """pebble.concurrent.process: at the deadline SIGTERM, SIGKILL 3 s later, join; then the future fails."""
    from pebble import concurrent

    try:
        limited = concurrent.process(timeout=_left(start, timeout))(workloads.timed_work)
        value, marks.work = limited(marks.workload, rows, threads).result()
        return value
    finally:
        marks.stop()


class _PebblePool:
    """One pebble ProcessPool per worker process (a worker keeps its pool), stopped at exit: its
    workers are not daemonic, and multiprocessing's exit handler would wait for them forever."""

    def __init__(self) -> None:
        self.pool = None

    def get(self):
        if self.pool is None:
            from pebble import ProcessPool

            self.pool = ProcessPool(max_workers=1)
            atexit.register(self.close)
        return self.pool

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=5)

    def _after_fork(self) -> None:
        self.pool = None  # the parent's pool threads did not come along


PEBBLE_POOL = _PebblePool()
os.register_at_fork(after_in_child=PEBBLE_POOL._after_fork)


def close_pools() -> None:
    """Stop the pools a strategy keeps (`Strategy.keeps_workers`), their own way. Call it before
    reaping the task processes: pebble's pool does not survive its idle worker being killed (the
    next call fails with BrokenProcessPool, every later one with RuntimeError "Unexpected error within the Pool")."""
    PEBBLE_POOL.close()


def _pebble_pool(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """pebble.ProcessPool.schedule(timeout=): the pool stops the worker process at the deadline and starts another."""
    try:
        future = PEBBLE_POOL.get().schedule(workloads.timed_work, args=(marks.workload, rows, threads),
                                            timeout=_left(start, timeout))
        value, marks.work = future.result()
        return value
    finally:
        marks.stop()


def _wrapt_process(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """wrapt-timeout-decorator, use_signals=False: a `multiprocess` process, SIGTERM and join(1 s) at the deadline.

    `multiprocess` keeps a start method of its own (fork, even on 3.14): set to the worker's, as
    for every process strategy (START_METHOD or the queue's; forkserver is 3.14's default)."""
    import multiprocessing

    import multiprocess
    from wrapt_timeout_decorator import timeout as wrapt_timeout

    method = multiprocessing.get_start_method()
    if multiprocess.get_start_method(allow_none=True) != method:
        multiprocess.set_start_method(method, force=True)
    try:
        limited = wrapt_timeout(_left(start, timeout), use_signals=False)(workloads.timed_work)
        value, marks.work = limited(marks.workload, rows, threads)
        return value
    finally:
        marks.stop()


def _wrapt_signals(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """wrapt-timeout-decorator, use_signals=True: SIGALRM in the main thread (a process elsewhere, silently)."""
    from wrapt_timeout_decorator import timeout as wrapt_timeout

    return wrapt_timeout(_left(start, timeout), use_signals=True)(_plain)(rows, timeout, threads, start, marks)


def _func_timeout(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """func-timeout: the call in a thread of its own; at the deadline an async exception into it, and control back."""
    from func_timeout import func_timeout

    # `stopped` stays unseen on a timeout: the thread may still be in the C call when control is back
    return func_timeout(_left(start, timeout), _plain, args=(rows, timeout, threads, start, marks))


def _stopit_thread(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """stopit.ThreadingTimeout: a timer thread raises an async exception in this thread (swallow_exc=False: seen)."""
    import stopit

    with stopit.ThreadingTimeout(_left(start, timeout), swallow_exc=False):
        return _plain(rows, timeout, threads, start, marks)


def _stopit_signal(rows: int, timeout: float, threads: int, start: float, marks: _Marks) -> int:
    """stopit.SignalTimeout: signal.alarm(int(seconds)), so under a second no alarm at all (swallow_exc=False)."""
    import stopit

    with stopit.SignalTimeout(_left(start, timeout), swallow_exc=False):
        return _plain(rows, timeout, threads, start, marks)


# strategy name -> its runner, written out so that grep finds every caller; one entry per Strategy
# of app/kernel/axes.py, whose `runner` names the same function (tests/worker/test_axes.py holds them equal)
RUNNERS = {
    "process": _process,  # the article's call: timeout_decorator.timeout(..., use_signals=False)
    "process+cleanup": _process,  # the same call; the task reaps what it left (app/cleanup.py)
    "signals": _signals,
    "interrupt": _interrupt,
    "deadline": _deadline,
    "prefork-time-limit": _plain,  # no timeout of its own: Celery's time limits stop the task
    "pebble": _pebble,
    "pebble-pool": _pebble_pool,
    "wrapt-process": _wrapt_process,
    "wrapt-signals": _wrapt_signals,
    "func-timeout": _func_timeout,
    "stopit-thread": _stopit_thread,
    "stopit-signal": _stopit_signal,
}


def plain(rows: int, threads: int = 1, workload: str = DEFAULT_WORKLOAD) -> int:
    """The query with no timeout at all: what the benchmark compares per-call overhead against."""
    return workloads.get(workload).run(rows, threads)


def run(strategy: str, rows: int, timeout: float, threads: int = 1, clock: Clock | None = None,
        connection: str = "per-call", workload: str = DEFAULT_WORKLOAD) -> Outcome:
    """Run the query under `strategy` with a `timeout` in seconds from `clock` (default: now) and say how it ended.

    `rows` is the workload's size; a strategy whose stop the workload lacks raises NoSuchStop."""
    runner = RUNNERS[strategy]
    impl = workloads.get(workload)
    if not supports(strategy, workload):
        raise NoSuchStop(f"workload={workload!r} has no {strategy} stop (it has: "
                         f"{', '.join(impl.declared.stops) or 'none in-process'}); "
                         f"run it under signals or a process strategy")
    if connection not in CONNECTIONS:
        raise ValueError(f"connection={connection!r}: expected one of {', '.join(CONNECTIONS)}")
    if connection != "per-call" and axes.STRATEGIES[strategy].per_call_connection:
        where = "a task process" if axes.STRATEGIES[strategy].starts_processes else "a thread of its own"
        raise ValueError(f"connection={connection!r}: {strategy} opens its connection in {where} per call")
    marks = _Marks(strategy, connection, workload)
    called = time.monotonic()
    clock = clock or Clock(called, "call")
    start = min(clock.start, called)
    facts = dict(clock_source=clock.source, called_after=round(called - start, 6), connection=connection,
                 started_at=start)

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - start, 6)

    try:
        runner(rows, timeout, threads, start, marks)
    except BaseException as exc:  # noqa: BLE001 - SoftTimeLimitExceeded is what we measure
        end = time.monotonic()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        outcome = "timeout" if axes.STRATEGIES[strategy].is_timeout(exc) or impl.is_timeout(exc) else "error"
        if outcome == "error" and marks.reused:
            REUSED.discard(strategy, threads, workload)
        return Outcome(outcome, _qualname(exc), str(exc)[:200], elapsed=round(end - start, 6),
                       stopped=since(marks.stopped), **facts)
    end = time.monotonic()
    return Outcome("ok", elapsed=round(end - start, 6), stopped=since(marks.stopped), work=round(marks.work, 6),
                   **facts)
