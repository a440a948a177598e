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

from .workload_axis import DEFAULT_WORKLOAD, WORKLOAD_NAMES, WORKLOADS


@dataclass(frozen=True)
class Pool:
    """A Celery worker pool, as the lab starts it (`celery worker --pool=<name>`).

    What each pool can do (time limits, SIGALRM in the task, processes from the task) is not
    declared here but measured: `scripts/lab pools` (scripts/labctl/pools.py) and docs/pools.md.
    `time_limits` is what Celery's documentation says, which the producer uses to decide whether
    to send the limits at all (they are sent to every pool by the capability run).
    """

    name: str
    time_limits: bool  # Celery's docs: soft_time_limit / time_limit are enforced in it
    summary: str
    concurrent: bool = True  # takes --concurrency (solo runs one task at a time)
    package: str | None = None  # a module the worker's interpreter must have (gevent), else the pool is skipped

    def argv(self, concurrency: int = 1) -> tuple[str, ...]:
        """The `celery worker` options that select it."""
        return (f"--pool={self.name}",) + ((f"--concurrency={concurrency}",) if self.concurrent else ())


POOL_LIST = (
    Pool("solo", False, "tasks run in the worker's main thread, one at a time (the article's pool)", concurrent=False),
    Pool("threads", False, "tasks run in a thread pool of the worker process (no time limits, no SIGALRM)"),
    Pool("prefork", True, "tasks run in daemonic pool processes; Celery's time limits apply"),
    Pool("gevent", True, "tasks run in greenlets of one thread, after gevent's monkey-patching", package="gevent"),
)
POOLS = {pool.name: pool for pool in POOL_LIST}
POOL_NAMES = tuple(POOLS)


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
# The libraries' own (docs/libraries.md): pebble and wrapt-timeout-decorator raise the builtin
# TimeoutError; func-timeout a BaseException of its own; stopit its TimeoutException.
FUNC_TIMEOUT = Sign("func_timeout.exceptions.FunctionTimedOut")
STOPIT_TIMEOUT = Sign("stopit.utils.TimeoutException")


@dataclass(frozen=True)
class Strategy:
    """One way of timing out the query."""

    name: str
    runner: str  # the function in app/strategies.py that runs the query under it
    summary: str  # one line, for the docs' table and --help
    signs: tuple[Sign, ...]  # how its timeout shows to the caller
    pool: str = "solo"  # the Celery pool its worker runs in unless the queue names another (a key of POOLS)
    starts_processes: bool = False  # a process per call: the start method is a second axis
    keeps_workers: bool = False  # its processes outlive the call, reused by the next (a pool's): not leftovers
    cleans_up: bool = False  # the task reaps the task processes after a timeout (app/cleanup.py)
    time_limits: bool = False  # the producer sends Celery's soft/hard time limits with the task
    main_thread: bool = False  # needs the main thread (SIGALRM)
    stop: str | None = None  # the workload's own stop it uses (a name of Workload.stops); None: works on any
    own_thread: bool = False  # the call runs in a thread the strategy starts per call (no reused connection)
    library: str | None = None  # the PyPI package it measures (pinned in requirements/lab.txt); None: the lab's own
    raises: Sign | None = None  # the exception the library documents for a timeout (a library's strategy)

    @property
    def own_exception(self) -> str | None:
        """`raises` when it is a class of the library's own (records name builtins without a module);
        None for a builtin, which anything else in the task could raise too, or the lab's own strategy."""
        return self.raises.type if self.raises is not None and "." in self.raises.type else None

    @property
    def per_call_connection(self) -> bool:
        """Whether its connection lives in a process or thread started per call, which it cannot outlive."""
        return self.starts_processes or self.own_thread

    def runs_on(self, workload: str) -> bool:
        """Whether the workload has what this strategy needs (numpy has no interrupt hook: no `interrupt`)."""
        return self.stop is None or self.stop in WORKLOADS[workload].stops

    @property
    def in_plain_process(self) -> bool:
        """Whether it works outside a Celery worker (bench/strategies.py, bench/soak.py)."""
        return not self.time_limits

    def is_timeout(self, exc: BaseException) -> bool:
        return any(sign.matches(exc) for sign in self.signs)


STRATEGY_LIST = (
    Strategy("process", "_process", "timeout-decorator, use_signals=False: the article's baseline",
             (DECORATOR_TIMEOUT,), starts_processes=True, library="timeout-decorator", raises=DECORATOR_TIMEOUT),
    Strategy("process+cleanup", "_process",
             "the same, then the task reaps its task processes with psutil (the article's fix)",
             (DECORATOR_TIMEOUT,), starts_processes=True, cleans_up=True, library="timeout-decorator",
             raises=DECORATOR_TIMEOUT),
    Strategy("signals", "_signals", "timeout-decorator with SIGALRM (main thread only)",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB, ANY_TIMEOUT_ERROR), main_thread=True,
             library="timeout-decorator", raises=DECORATOR_TIMEOUT),
    Strategy("interrupt", "_interrupt", "a watchdog thread calls con.interrupt() at the deadline",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT), stop="interrupt"),
    Strategy("deadline", "_deadline", "DuckDB's own SET max_execution_time; no thread, no process",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT), stop="deadline"),
    Strategy("prefork-time-limit", "_plain",
             "no decorator: Celery's prefork pool enforces soft_time_limit / time_limit",
             (DECORATOR_TIMEOUT, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB, SOFT_TIME_LIMIT, ANY_TIMEOUT_ERROR),
             pool="prefork", time_limits=True),
    # The libraries a Celery engineer picks from PyPI, as their documentation shows them (docs/libraries.md)
    Strategy("pebble", "_pebble", "pebble: concurrent.process(timeout=), a process per call",
             (ANY_TIMEOUT_ERROR,), starts_processes=True, library="pebble", raises=ANY_TIMEOUT_ERROR),
    Strategy("pebble-pool", "_pebble_pool", "pebble: ProcessPool.schedule(timeout=), one worker process kept",
             (ANY_TIMEOUT_ERROR,), starts_processes=True, keeps_workers=True, library="pebble",
             raises=ANY_TIMEOUT_ERROR),
    Strategy("wrapt-process", "_wrapt_process", "wrapt-timeout-decorator, use_signals=False: a multiprocess process",
             (ANY_TIMEOUT_ERROR,), starts_processes=True, library="wrapt-timeout-decorator",
             raises=ANY_TIMEOUT_ERROR),
    Strategy("wrapt-signals", "_wrapt_signals", "wrapt-timeout-decorator, use_signals=True: SIGALRM",
             (ANY_TIMEOUT_ERROR, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB), library="wrapt-timeout-decorator",
             raises=ANY_TIMEOUT_ERROR),
    Strategy("func-timeout", "_func_timeout", "func-timeout: the call in a thread, an async exception at the deadline",
             (FUNC_TIMEOUT,), own_thread=True, library="func-timeout", raises=FUNC_TIMEOUT),
    Strategy("stopit-thread", "_stopit_thread", "stopit.ThreadingTimeout: an async exception into the caller's thread",
             (STOPIT_TIMEOUT,), library="stopit", raises=STOPIT_TIMEOUT),
    Strategy("stopit-signal", "_stopit_signal", "stopit.SignalTimeout: SIGALRM, whole seconds (main thread only)",
             (STOPIT_TIMEOUT, DUCKDB_INTERRUPT, SIGNAL_IN_DUCKDB), main_thread=True, library="stopit",
             raises=STOPIT_TIMEOUT),
)
STRATEGIES = {s.name: s for s in STRATEGY_LIST}
STRATEGY_NAMES = tuple(STRATEGIES)
PROCESS_STRATEGIES = tuple(s.name for s in STRATEGY_LIST if s.starts_processes)

BUILDS = ("gil", "nogil")
START_METHODS = ("fork", "forkserver", "spawn")


# --- queues ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    """What a queue's name says: which build serves it, with which strategy, start method and pool."""

    name: str
    build: str
    strategy: str
    start_method: str | None  # None: the interpreter's default (fork on 3.11, forkserver on 3.14)
    pool_named: str | None = None  # the pool the name gives; None: the strategy's own
    workload: str = DEFAULT_WORKLOAD  # the C call it times out (app/kernel/workload_axis.py)

    @property
    def pool(self) -> str:
        return self.pool_named or STRATEGIES[self.strategy].pool


# The article's three workers, each consuming the queue named like it: queue -> (build, strategy).
ARTICLE_WORKERS = {
    "gil": ("gil", "process"),
    "gil-clean": ("gil", "process+cleanup"),
    "nogil": ("nogil", "process"),
}


QUEUE_GRAMMAR = "<build>.<strategy>[.<start method>][.<pool>][.<workload>]"


def strategy_queue(build: str, strategy: str, start_method: str | None = None, pool: str | None = None,
                   workload: str | None = None) -> str:
    """Queue of the strategy matrix (QUEUE_GRAMMAR), e.g. `nogil.interrupt`, `gil.process.spawn`,
    `nogil.interrupt.threads`, `gil.interrupt.sqlite`. The pool is named only when it is not the
    strategy's own and the workload only when it is not DuckDB: one name per cell. ('@' is not
    the separator: Celery node names are `<name>@<host>`.)"""
    pool = None if pool == STRATEGIES[strategy].pool else pool
    workload = None if workload == DEFAULT_WORKLOAD else workload
    return ".".join(part for part in (build, strategy, start_method, pool, workload) if part)


def parse_queue(name: str) -> QueueSpec | None:
    """The queue's build, strategy, start method, pool and workload; None for a name outside the grammar."""
    if name in ARTICLE_WORKERS:
        build, strategy = ARTICLE_WORKERS[name]
        return QueueSpec(name, build, strategy, None)
    build, _, rest = name.partition(".")
    strategy, _, rest = rest.partition(".")
    if build not in BUILDS or strategy not in STRATEGIES:
        return None
    parts = rest.split(".") if rest else []
    start = parts.pop(0) if parts and parts[0] in START_METHODS else None
    pool = parts.pop(0) if parts and parts[0] in POOLS else None
    workload = parts.pop(0) if parts and parts[0] in WORKLOADS else None
    if parts or (start and not STRATEGIES[strategy].starts_processes) or pool == STRATEGIES[strategy].pool \
            or workload == DEFAULT_WORKLOAD:
        return None
    return QueueSpec(name, build, strategy, start, pool, workload or DEFAULT_WORKLOAD)


class QueueNames:
    """TARGET_QUEUES' choices: every name parse_queue accepts (`in`), shown as the article's
    queues and the grammar (iterating, for the one-line error message)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and parse_queue(name) is not None

    def __iter__(self):
        return iter((*ARTICLE_WORKERS, QUEUE_GRAMMAR))

    def __len__(self) -> int:
        return len(ARTICLE_WORKERS) + 1


QUEUE_NAMES = QueueNames()


def matrix_queues(builds=BUILDS, strategies=None, pools=(None,), start_methods=(None,),
                  workloads=(None,)) -> tuple[str, ...]:
    """The queues of a matrix run, builds x strategies x start methods x pools x workloads, in
    that order (a start method only for the strategies that start processes; pool None: the
    strategy's own; workload None: DuckDB)."""
    out: list[str] = []
    for b in builds:
        for s in strategies or STRATEGY_NAMES:
            for m in start_methods if STRATEGIES[s].starts_processes else (None,):
                for p in pools:
                    for w in workloads:
                        q = strategy_queue(b, s, m, p, w)
                        if q not in out:
                            out.append(q)
    return tuple(out)


KNOWN_QUEUES = tuple(q for q in dict.fromkeys(
    tuple(ARTICLE_WORKERS)
    + matrix_queues()
    + matrix_queues(strategies=PROCESS_STRATEGIES, start_methods=START_METHODS)
    + matrix_queues(pools=(None, *POOL_NAMES), start_methods=(None, *START_METHODS))
    + matrix_queues(workloads=WORKLOAD_NAMES)
) if (spec := parse_queue(q)) and STRATEGIES[spec.strategy].runs_on(spec.workload))
# every shape of the grammar a worker runs (not `gil.interrupt.numpy`: numpy has no interrupt);
# TARGET_QUEUES accepts any name of QUEUE_NAMES


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
