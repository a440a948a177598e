"""The experiment's axes, one declaration per value: timeout strategies, Celery pools, builds.

Everything that needs to know what a strategy is reads it here: the worker's config and its
runner (app/strategies.py), the producer's task options, `scripts/lab` (which worker to start
with which pool), the claims, the benchmarks, the Compose matrix and the docs' strategies table.
Adding a strategy is one `Strategy(...)` entry below plus its runner function in
app/strategies.py. Queue names are parsed in one place, `parse_queue`.

Standard library only: the producer and the host scripts import it without Celery or DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pool:
    """A Celery worker pool, as the lab starts it."""

    name: str
    argv: tuple[str, ...]  # the `celery worker` options that select it
    time_limits: bool  # Celery enforces soft_time_limit / time_limit in it
    summary: str


POOLS = {
    pool.name: pool
    for pool in (
        Pool("solo", ("--pool=solo",), False,
             "tasks run in the worker's main thread, one at a time (the article's pool)"),
        Pool("prefork", ("--pool=prefork", "--concurrency=1"), True,
             "tasks run in a (daemonic) pool process; Celery's time limits apply"),
    )
}


@dataclass(frozen=True)
class Sign:
    """An exception that means "the deadline passed": its class, by qualified name as records
    show it (`_qualname`), or any base class of that name; optionally a word its message holds."""

    type: str
    says: str | None = None

    def matches(self, exc: BaseException) -> bool:
        names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__} | {c.__qualname__ for c in type(exc).__mro__}
        return self.type in names and (self.says is None or self.says in str(exc).lower())


# timeout-decorator's own error (both its modes), whoever raises it
DECORATOR_TIMEOUT = Sign("timeout_decorator.timeout_decorator.TimeoutError")
# DuckDB stopped by con.interrupt() or by its max_execution_time
DUCKDB_INTERRUPT = Sign("_duckdb.InterruptException")
# a Python exception raised by a signal handler while DuckDB ran: DuckDB turns it into this
SIGNAL_IN_DUCKDB = Sign("RuntimeError", says="interrupt")
SOFT_TIME_LIMIT = Sign("SoftTimeLimitExceeded")
ANY_TIMEOUT_ERROR = Sign("TimeoutError")  # by class name: timeout-decorator's or the builtin


@dataclass(frozen=True)
class Strategy:
    """One way of timing out the query."""

    name: str
    runner: str  # the function in app/strategies.py that runs the query under it
    summary: str  # one line, for the docs' table and --help
    signs: tuple[Sign, ...]  # how its timeout shows to the caller
    pool: str = "solo"  # the Celery pool its worker needs (a key of POOLS)
    starts_processes: bool = False  # a process per call: the start method is a second axis
    cleans_up: bool = False  # the task reaps the task processes after a timeout (app/cleanup.py)
    time_limits: bool = False  # the producer sends Celery's soft/hard time limits with the task
    main_thread: bool = False  # needs the main thread (SIGALRM)

    @property
    def in_plain_process(self) -> bool:
        """Whether it works outside a Celery worker (bench/strategies.py, bench/soak.py)."""
        return not self.time_limits

    def is_timeout(self, exc: BaseException) -> bool:
        return any(sign.matches(exc) for sign in self.signs)


STRATEGY_LIST = (
    Strategy("process", "_process", "timeout-decorator, use_signals=False: the article's baseline",
             (DECORATOR_TIMEOUT,), starts_processes=True),
    Strategy("process+cleanup", "_process",
             "the same, then the task reaps its task processes with psutil (the article's fix)",
             (DECORATOR_TIMEOUT,), starts_processes=True, cleans_up=True),
    Strategy("signals", "_signals", "timeout-decorator with SIGALRM (main thread only)",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB, ANY_TIMEOUT_ERROR), main_thread=True),
    Strategy("interrupt", "_interrupt", "a watchdog thread calls con.interrupt() at the deadline",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT)),
    Strategy("deadline", "_deadline", "DuckDB's own SET max_execution_time; no thread, no process",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT)),
    Strategy("prefork-time-limit", "_plain",
             "no decorator: Celery's prefork pool enforces soft_time_limit / time_limit",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB, SOFT_TIME_LIMIT, ANY_TIMEOUT_ERROR),
             pool="prefork", time_limits=True),
)
STRATEGIES = {s.name: s for s in STRATEGY_LIST}
STRATEGY_NAMES = tuple(STRATEGIES)
PROCESS_STRATEGIES = tuple(s.name for s in STRATEGY_LIST if s.starts_processes)

BUILDS = ("gil", "nogil")
START_METHODS = ("fork", "forkserver", "spawn")


# --- queues ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    """What a queue's name says: which build serves it, with which strategy and start method."""

    name: str
    build: str
    strategy: str
    start_method: str | None  # None: the interpreter's default (fork on 3.11, forkserver on 3.14)

    @property
    def pool(self) -> str:
        return STRATEGIES[self.strategy].pool


# The article's three workers, each consuming the queue named like it: queue -> (build, strategy).
ARTICLE_WORKERS = {
    "gil": ("gil", "process"),
    "gil-clean": ("gil", "process+cleanup"),
    "nogil": ("nogil", "process"),
}


def strategy_queue(build: str, strategy: str, start_method: str | None = None) -> str:
    """Queue of the strategy matrix: `<build>.<strategy>[.<start method>]`, e.g. `nogil.interrupt`,
    `gil.process.spawn`. ('@' is not the separator: Celery node names are `<name>@<host>`.)"""
    return f"{build}.{strategy}" + (f".{start_method}" if start_method else "")


def parse_queue(name: str) -> QueueSpec | None:
    """The queue's build, strategy and start method; None for a name outside the grammar."""
    if name in ARTICLE_WORKERS:
        build, strategy = ARTICLE_WORKERS[name]
        return QueueSpec(name, build, strategy, None)
    build, _, rest = name.partition(".")
    strategy, _, start = rest.partition(".")
    if build not in BUILDS or strategy not in STRATEGIES:
        return None
    if start and (start not in START_METHODS or not STRATEGIES[strategy].starts_processes):
        return None
    return QueueSpec(name, build, strategy, start or None)


KNOWN_QUEUES = (
    tuple(ARTICLE_WORKERS)
    + tuple(strategy_queue(b, s) for b in BUILDS for s in STRATEGY_NAMES)
    + tuple(strategy_queue(b, s, m) for b in BUILDS for s in PROCESS_STRATEGIES for m in START_METHODS)
)


def limits_ignored(strategy: str | None, pool: str | None) -> bool:
    """A strategy that relies on Celery's time limits, run in a pool that does not enforce them
    (claim 8's solo time-limit job: the query runs to its end)."""
    s, p = STRATEGIES.get(strategy or ""), POOLS.get(pool or "")
    return bool(s and p and s.time_limits and not p.time_limits)


def strategies_markdown() -> str:
    """The registry as a markdown table (docs/strategies.md carries it; a test keeps it equal)."""
    from .tables import render

    yes = {True: "yes", False: "-"}
    rows = []
    for s in STRATEGY_LIST:
        signs = ", ".join(f"`{sign.type}`" + (f" saying '{sign.says}'" if sign.says else "") for sign in s.signs)
        rows.append([f"`{s.name}`", s.pool, yes[s.starts_processes], yes[s.cleans_up], yes[s.time_limits], signs])
    headers = ["strategy", "pool", "a process per call", "cleans up", "Celery time limits", "timeout shows as"]
    return render(headers, rows, markdown=True) + "\n"
