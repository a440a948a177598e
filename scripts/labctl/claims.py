"""`scripts/lab claims [--quick] [--claims 1,5] [VARIABLE=value ...]`: the article's claims, measured.

The host side is stdlib-only. It runs experiments inside the lab venvs as subprocesses:
`python -m app.experiments.claims ...` for what needs no broker (claims 4, 5, 7), and real Celery
workers (`celery -A app worker` / `-A app.experiments.claims_worker`) fed by the producer's sender
(`python -m producer.send iterations`, the producer's own enqueue and collect) for the rest. Each
answers with one result line (app/kernel/result_line.py, read by runner.LocalRun.result).
The broker, the processes' environment, the workers' argv and readiness, the state record and
the stopping are runner.LocalRun's, the same as `scripts/lab run`'s: every process gets the
run's LAB_RUN_ID marker plus CLAIMS_JOB=<job>, is stopped by pid when its job ends, and the run
stops what is left and sweeps its marker at the end.

Results: results/<run>/claims.json (every measurement and verdict), results/<run>/claims.md
(the table), results/<run>/logs/ (every worker's and experiment's output).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import platform
import sys
import textwrap
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from app.kernel import axes, defaults, procfs, results_io, settings
from app.kernel.envparse import ConfigError
from app.kernel.workload_axis import WORKLOAD_NAMES  # stdlib only
from app.measure import calibrate  # stdlib-only at import; duckdb only to measure

from . import claims_report, paths, procs, runner
from .parsing import Parser
from .runner import UsageError
from .venvs import host_venv

CLAIMS = tuple(range(1, 9))
INTERPRETERS = settings.CLAIMS_INTERPRETERS  # this machine's python3, CPython 3.14 gil, 3.14 free-threaded
START_METHODS = ("fork", "forkserver")
JOB_MARKER = "CLAIMS_JOB"

# Sizing (DUCKDB_ROWS=auto): every job measures the query's speed on its own interpreter
# (app/measure/calibrate.py) and scans as many rows as take a target duration. The Celery workers use
# the lab's target (calibrate.target_seconds: 20x the timeout, at least 2 s past the settle
# window), so under fork the leftovers still run at the last snapshot. The thread-stop
# experiment runs its query twice to the end, so it aims shorter: THREAD_STOP_TIMEOUTS x the
# deadline, enough that an exception landing at the deadline would show as a small share of the
# query's CPU. Every other workload of claim 5 (app/kernel/workload_axis.py: sqlite3, numpy, the
# GIL-holding builtin, pyarrow) runs WORKLOAD_STOP_SECONDS at its own measured rate, with its
# deadline a quarter into the call at most (app/experiments/claims.py).
THREAD_STOP_TIMEOUTS = 8
WORKLOAD_STOP_SECONDS = 1.0
# A measurement whose premise failed (the query ended before its deadline) runs once more with
# this many times the rows; if it still ends early, the report says "premise failed".
PREMISE_RERUN_FACTOR = 4
# Budget for a query that runs to its end, when the host cannot know the speed (explicit rows):
# a machine this slow is ~7x slower than ours.
SLOW_ROWS_PER_SECOND = 5e7


def thread_stop_seconds(deadline: float) -> float:
    """How long the thread-stop experiment's query should run: 8 deadlines, at least 1.5 s past one."""
    return max(THREAD_STOP_TIMEOUTS * deadline, deadline + 1.5)

# What `VARIABLE=value` words the command accepts, and how it reads them: the variables
# app/kernel/settings.py says claims reads, with claims' own ranges and defaults (CLAIMS_OVERRIDES there).
SPEC = settings.claims_settings()
VARIABLES = {name: s.describe() for name, s in SPEC.items()}  # name -> its line in --help
FROM_ENV = tuple(name for name, s in SPEC.items() if s.env)  # the others only from the command line


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    quick: bool
    claims: tuple[int, ...]
    iterations: int
    rows: int | None  # None: DUCKDB_ROWS=auto, each job sizes its query from its interpreter's calibration
    timeout: float
    settle: float
    parallel: int
    broker: str
    broker_url: str | None
    results_dir: Path
    run_id: str
    python_version: str
    pythons: dict = field(default_factory=dict)  # CLAIMS_PYTHONS: interpreter -> python, exactly these
    overrides: dict = field(default_factory=dict)  # what the user set, for the reproduce commands

    def reproduce(self, claim: int | None = None) -> str:
        words = ["scripts/lab", "claims"]
        if self.quick:
            words.append("--quick")
        if claim is not None:
            words += ["--claims", str(claim)]
        elif self.claims != CLAIMS:
            words += ["--claims", ",".join(map(str, self.claims))]
        words += [f"{k}={v}" for k, v in sorted(self.overrides.items()) if k not in ("RESULTS_DIR", "RUN_ID", "BROKER_URL")]
        return " ".join(words)


USAGE = """usage: scripts/lab claims [-h] [--quick] [--claims N[,N...]|all] [VARIABLE=value ...]

Measure the article's claims (1-8) on this machine and write results/<run>/claims.md and
claims.json. A full run takes a few minutes; --quick (fewer iterations and configurations,
what tests/claims runs) about two. Interpreters: this machine's python3 (a venv made once) and
the CPython 3.14 gil / free-threaded venvs of `scripts/lab setup` when they exist.

""" + textwrap.fill(f"variables ({', '.join(FROM_ENV[:-1])} and {FROM_ENV[-1]} are also read from the environment; "
                    "the others only from the command line):", width=100) + "\n" + "\n".join(settings.usage_lines(SPEC.values()))


def parse_args(args: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Validate everything before anything starts: bad input is one line and exit 2."""
    parser = Parser(prog="scripts/lab claims", error_type=UsageError, help_text=USAGE)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--claims", metavar="N[,N...]|all", expects="all, or a comma-separated list of claim numbers 1 to 8")
    parser.add_argument("words", nargs="*", metavar="VARIABLE=value")
    ns = parser.parse_intermixed_args(list(args))  # -h/--help: prints USAGE, SystemExit(0)
    quick = ns.quick
    claims: tuple[int, ...] = CLAIMS if ns.claims is None else _claim_list(ns.claims)
    overrides: dict[str, str] = {}
    for arg in ns.words:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"{arg!r}: expected VARIABLE=value, VARIABLE one of {', '.join(VARIABLES)}")
        if key not in VARIABLES:
            raise UsageError(f"unknown variable {key}: expected one of {', '.join(VARIABLES)}")
        overrides[key] = value
    merged = {k: v for k, v in env.items() if k in FROM_ENV}
    merged.update(overrides)
    iterations = SPEC["ITERATIONS"].read(merged, default=settings.CLAIMS_QUICK_ITERATIONS if quick
                                         else SPEC["ITERATIONS"].default)
    rows = SPEC["DUCKDB_ROWS"].read(merged)  # None: auto
    timeout = SPEC["DUCKDB_TIMEOUT"].read(merged)
    settle = SPEC["SETTLE_SECONDS"].read(merged)
    parallel = SPEC["CLAIMS_PARALLEL"].read(merged)
    broker = SPEC["LAB_BROKER"].read(merged)
    broker_url = SPEC["BROKER_URL"].read(merged)  # None: the run starts one
    run_id = SPEC["RUN_ID"].read(merged, default="claims-" + time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4])
    version = SPEC["PYTHON_VERSION"].read(merged)
    results_dir = SPEC["RESULTS_DIR"].read(merged)
    return Settings(
        quick=quick, claims=claims, iterations=iterations, rows=rows, timeout=timeout, settle=settle,
        parallel=parallel, broker=broker, broker_url=broker_url, results_dir=Path(results_dir), run_id=run_id,
        python_version=version, pythons=_python_list(SPEC["CLAIMS_PYTHONS"].read(merged) or ""), overrides=overrides,
    )


def _python_list(value: str) -> dict:
    if not value.strip():
        return {}
    out = {}
    for item in value.split(","):
        name, sep, path = item.strip().partition("=")
        if not sep or name not in INTERPRETERS or name in out or not path:
            raise ConfigError("CLAIMS_PYTHONS", value, SPEC["CLAIMS_PYTHONS"].error_expected())
        if not os.access(path, os.X_OK) or not Path(path).is_file():
            raise ConfigError("CLAIMS_PYTHONS", value, f"an executable python for {name} ({path} is not one)")
        out[name] = path
    return out


def _claim_list(value: str) -> tuple[int, ...]:
    if value.strip() == "all":
        return CLAIMS
    expected = "all, or a comma-separated list of claim numbers 1 to 8, each at most once"
    items = [item.strip() for item in value.split(",")]
    if not items or not all(item.isdigit() and int(item) in CLAIMS for item in items) or len(set(items)) != len(items):
        raise UsageError(f"--claims {value!r}: expected {expected}")
    return tuple(sorted(int(item) for item in items))


# --- jobs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plain:
    """`python -m app.experiments.claims NAME PARAMS` in one interpreter."""

    id: str
    interp: str
    experiment: str
    params: dict
    env: dict = field(default_factory=dict)
    timeout: float = 120.0


@dataclass(frozen=True)
class Worker:
    """A real Celery worker fed `iterations` tasks by `python -m producer.send iterations`."""

    id: str
    interp: str
    strategy: str
    pool: str = "solo"  # solo | prefork
    start_method: str | None = None  # None: the interpreter's default
    max_tasks_per_child: int | None = None
    task: str = defaults.TASK_NAME
    app_module: str = "app"
    time_limits: bool = False  # send soft_time_limit / time_limit with each task
    gil_off: bool = True  # nogil only: PYTHON_GIL=0 (the lab's nogil workers run like this)
    iterations: int | None = None  # None: the run's ITERATIONS
    rows: int | None = None  # None: the run's DUCKDB_ROWS (auto or a count); set by a premise re-run

    @property
    def queue(self) -> str:
        return f"claims.{self.id}"


def plan(s: Settings, have: Mapping[str, bool]) -> list[Plain | Worker]:
    """The jobs the selected claims need, on the interpreters this machine has: each job once, in the
    order the claims first ask for it (JOBS)."""
    jobs: dict[str, Plain | Worker] = {}
    for claims, jobs_of in JOBS:
        if claims & set(s.claims):
            for job in jobs_of(s, have):
                jobs.setdefault(job.id, job)
    return list(jobs.values())


def _gil_builds(have: Mapping[str, bool]) -> list[str]:
    return [i for i in ("host", "gil") if have[i]]


def _present(have: Mapping[str, bool]) -> list[str]:
    return [i for i in INTERPRETERS if have[i]]


def _gil_off(interp: str) -> dict:
    """The environment of a plain job: PYTHON_GIL=0 on the free-threaded build, as the lab's nogil workers run."""
    return {"PYTHON_GIL": "0"} if interp == "nogil" else {}


def _leftover_workers(s: Settings, have: Mapping[str, bool]) -> Iterator[Worker]:
    """Claims 1, 2 and 8: the process strategy (1, 2) and process+cleanup (2 compares them, 8 is a
    mitigation) on the GIL builds, under each start method."""
    want = set(s.claims)
    for interp in _gil_builds(have):
        for m in START_METHODS:
            if want & {1, 2}:
                yield Worker(f"{interp}-{m}-process", interp, "process", start_method=m)
            if want & {2, 8}:
                yield Worker(f"{interp}-{m}-cleanup", interp, "process+cleanup", start_method=m)


def _free_threaded_workers(s: Settings, have: Mapping[str, bool]) -> Iterator[Worker]:
    """Claim 3: the process strategy on the free-threaded build, and on the GIL build next to it."""
    if not have["nogil"]:
        return
    for m in START_METHODS:
        yield Worker(f"nogil-{m}-process", "nogil", "process", start_method=m)
    if not s.quick:
        yield Worker("nogil-gilon-process", "nogil", "process", gil_off=False)
    if have["gil"]:  # the GIL build next to it, same start methods
        for m in START_METHODS:
            yield Worker(f"gil-{m}-process", "gil", "process", start_method=m)


def _gil_import_jobs(s: Settings, have: Mapping[str, bool]) -> Iterator[Plain]:
    """Claim 4: the GIL before and after importing psutil or duckdb (on nogil also with PYTHON_GIL=0)."""
    for interp in _present(have):
        for gil_env in ([None, "0"] if interp == "nogil" else [None]):
            for module in ("psutil", "duckdb"):
                tag = f"{interp}-{module}" + ("-gil0" if gil_env == "0" else "")
                env = {"PYTHON_GIL": gil_env} if gil_env else {}
                yield Plain(f"gil-import-{tag}", interp, "gil-import", {"modules": ["_decimal", module]}, env)


def _thread_stop_jobs(s: Settings, have: Mapping[str, bool]) -> Iterator[Plain]:
    """Claim 5: another thread stopping a long C call, on every interpreter and workload."""
    for interp in _present(have):
        # rows None: sized in that interpreter from its calibration to THREAD_STOP_TIMEOUTS x the deadline
        yield Plain(f"thread-stop-{interp}", interp, "thread-stop",
                    {"workload": "duckdb", "rows": s.rows, "seconds": thread_stop_seconds(s.timeout),
                     "deadline": s.timeout}, _gil_off(interp))
        # every other workload in a job of its own (a failed one costs that cell only), sized by its
        # own calibration (DUCKDB_ROWS is DuckDB's) to WORKLOAD_STOP_SECONDS
        for workload in WORKLOAD_NAMES:
            if workload != "duckdb":
                yield Plain(f"thread-stop-{interp}-{workload}", interp, "thread-stop",
                            {"workload": workload, "rows": None, "seconds": WORKLOAD_STOP_SECONDS,
                             "deadline": s.timeout}, _gil_off(interp))


def _prefork_workers(s: Settings, have: Mapping[str, bool]) -> Iterator[Worker]:
    """Claim 6: the prefork pool next to the solo pool (the claim-1 workers) on the same interpreter."""
    pairs = [(i, m) for i in _gil_builds(have) for m in START_METHODS] if not s.quick else \
        [(i, m) for i, m in (("host", "fork"), ("gil", "forkserver")) if have[i]]
    for interp, m in pairs:
        yield Worker(f"{interp}-{m}-prefork-process", interp, "process", pool="prefork", start_method=m,
                     iterations=1 if s.quick else 2)
        yield Worker(f"{interp}-{m}-process", interp, "process", start_method=m)


def _pickling_jobs(s: Settings, have: Mapping[str, bool]) -> Iterator[Plain]:
    """Claim 7: which timed functions survive the process fallback, per start method."""
    for interp in _present(have):
        yield Plain(f"pickling-{interp}", interp, "pickling",
                    {"start_methods": ["fork", "forkserver"] + ([] if s.quick else ["spawn"]), "timeout": 2.0,
                     "work": 0.05}, _gil_off(interp))


def _mitigation_workers(s: Settings, have: Mapping[str, bool]) -> Iterator[Worker]:
    """Claim 8 (process+cleanup is _leftover_workers'): the interrupt everywhere, Celery's own mitigations."""
    for interp in _present(have):
        yield Worker(f"{interp}-interrupt", interp, "interrupt")
    builds = _gil_builds(have)
    allowed = {"task": "claims.leak_demo_children_allowed", "app_module": "app.experiments.claims_worker"}
    # --quick: the Celery mitigations on the 3.14 gil build only (else the host's python3)
    for interp in (builds if not s.quick else [("gil" if have["gil"] else "host")] if builds else []):
        yield Worker(f"{interp}-prefork-time-limit", interp, "prefork-time-limit", pool="prefork", time_limits=True)
        yield Worker(f"{interp}-prefork-mtpc1-process", interp, "process", pool="prefork", max_tasks_per_child=1,
                     iterations=1)
        for m in (START_METHODS if not s.quick else ["fork"]):
            yield Worker(f"{interp}-{m}-prefork-mtpc1-allowed", interp, "process", pool="prefork",
                         start_method=m, max_tasks_per_child=1, **allowed)
        if not s.quick:  # the same without --max-tasks-per-child, to see what recycling changes
            yield Worker(f"{interp}-fork-prefork-allowed", interp, "process", pool="prefork", start_method="fork",
                         **allowed)
    if builds:
        interp = "gil" if "gil" in builds else builds[0]
        yield Worker(f"{interp}-solo-time-limit", interp, "prefork-time-limit", time_limits=True, iterations=1)
        yield Worker(f"{interp}-solo-mtpc1-process", interp, "process", max_tasks_per_child=1, start_method="fork")


# Which claims need each kind of job, in the order plan() takes them.
JOBS = (
    ({1, 2, 8}, _leftover_workers),
    ({3}, _free_threaded_workers),
    ({4}, _gil_import_jobs),
    ({5}, _thread_stop_jobs),
    ({6}, _prefork_workers),
    ({7}, _pickling_jobs),
    ({8}, _mitigation_workers),
)


# --- running --------------------------------------------------------------------------------------


# Settings a job sets itself (or the worker derives from them): never passed on from the caller's environment.
JOB_SETTINGS = ("PYTEST_*", "QUEUE", "WORKER_NAME", "TIMEOUT_STRATEGY", "CLEANUP_CHILDREN", "START_METHOD",
                "SETTLE_SECONDS", "CLEANUP_GRACE_SECONDS", "DUCKDB_THREADS", "PYTHONPATH", "PYTHONHOME")


class Run:
    """One claims run: its settings, its interpreters, and the LocalRun that owns its processes."""

    def __init__(self, s: Settings, pythons: dict[str, str], local: runner.LocalRun):
        self.s, self.pythons, self.local = s, pythons, local
        self.tries: dict[str, int] = {}  # job id -> attempts so far (each job runs in one thread)

    def spawn(self, job_id: str, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> procs.Started:
        """A process of job `job_id`: the run's environment plus `env` and the job's marker."""
        return self.local.spawn(name, argv, {**(env or {}), JOB_MARKER: job_id})

    def start_worker(self, job: Worker, name: str, env: Mapping[str, str]) -> procs.Started:
        """The job's Celery worker, started like `scripts/lab run`'s (runner.WorkerSpec)."""
        spec = runner.WorkerSpec(job.queue, "nogil" if job.interp == "nogil" else "gil", job.strategy, job.pool,
                                 name=job.id, app=job.app_module, start_method=job.start_method,
                                 max_tasks_per_child=job.max_tasks_per_child, gil_off=job.gil_off)
        return self.local.start_worker(spec, self.pythons[job.interp], {**env, JOB_MARKER: job.id}, name=name)


def _suffix(attempt: int) -> str:
    """Log name suffix of a job's attempt: a retry writes its own logs (`worker-<job>-2.log`), so it
    never reads its first attempt's result or " ready." line."""
    return "" if attempt == 1 else f"-{attempt}"


def run_plain(run: Run, job: Plain, attempt: int = 1) -> dict:
    argv = [run.pythons[job.interp], "-m", "app.experiments.claims", job.experiment, json.dumps(job.params)]
    p = run.spawn(job.id, f"exp-{job.id}{_suffix(attempt)}", argv, dict(job.env))
    start = time.monotonic()
    try:
        data = run.local.result(p, job.timeout)
    except (RuntimeError, TimeoutError) as exc:
        return {"error": str(exc)}
    return {"result": data, "seconds": round(time.monotonic() - start, 1)}


def _job_marked(pid: int, job_id: str) -> bool:
    return f"{JOB_MARKER}={job_id}".encode() in (procfs.environ(pid) or [])


def _proc_info(pid: int, job_id: str) -> dict | None:
    """State of `pid` if it is still one of this job's processes (its environment, or for a
    zombie, whose environment is gone, its parent's environment says so)."""
    fields = procfs.stat(pid)
    if fields is None:
        return None
    state, ppid = fields[procfs.STATE], int(fields[procfs.PPID])
    if not _job_marked(pid if state != "Z" else ppid, job_id):
        return None  # gone, and the pid was reused
    return {"pid": pid, "state": state, "ppid": ppid, "cpu": procfs.cpu_seconds(fields),
            "sigterm_caught": _sigterm_caught(pid)}


def _sigterm_caught(pid: int) -> bool | None:
    """Whether the process has a handler installed for SIGTERM (SigCgt in /proc/<pid>/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (15 - 1) & 1)
    except OSError:
        pass
    return None


def observe_leftovers(job: Worker, records: list[dict], worker_pid: int, interval: float = 1.0) -> dict:
    """After the last task: which task processes the records saw are still there, whose children, burning CPU?"""
    pids = set()
    for r in records:
        for snap in ("immediate", "settled"):
            for p in (r.get(snap) or {}).get("processes", []):
                if p.get("role") == "task":
                    pids.add(p["pid"])
    first = {pid: info for pid in sorted(pids) if (info := _proc_info(pid, job.id))}
    time.sleep(interval)
    rows = []
    pool_pids = {r.get("pid") for r in records if r.get("pid")}
    for pid, info in first.items():
        later = _proc_info(pid, job.id)
        if later is None:
            continue
        parent = later["ppid"]
        rows.append({
            "pid": pid,
            "state": later["state"],
            "ppid": parent,
            "parent": "worker" if parent == worker_pid else "pool process" if parent in pool_pids else
                      "forkserver" if _is_forkserver(parent) else f"pid {parent} ({procs.name(parent)})",
            "cpu_per_s": round((later["cpu"] - info["cpu"]) / interval, 2),
            "sigterm_caught": later["sigterm_caught"],
        })
    return {
        "seen": len(pids),
        "alive": sum(1 for r in rows if r["state"] != "Z"),
        "zombies": sum(1 for r in rows if r["state"] == "Z"),
        "orphaned": sum(1 for r in rows if r["parent"].startswith("pid ")),
        "burning": sum(1 for r in rows if r["cpu_per_s"] > 0.02),
        "sigterm_caught": sum(1 for r in rows if r["sigterm_caught"]),
        "processes": rows,
    }


def _is_forkserver(pid: int) -> bool:
    try:
        return b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def run_worker(run: Run, job: Worker, attempt: int = 1) -> dict:
    s = run.s
    python = run.pythons[job.interp]
    # The worker's main process measures the query's speed when it is ready (before the first task)
    # and publishes it here, so a prefork pool process reads it instead of measuring inside a task:
    # a measurement inside the task would eat into its soft time limit (SoftTimeLimitExceeded).
    calibration = run.local.work / "calibration" / job.id
    calibration.mkdir(parents=True, exist_ok=True)
    env = {"SETTLE_SECONDS": str(s.settle), "DUCKDB_THREADS": "1", "CALIBRATION_DIR": str(calibration)}
    iterations = job.iterations or s.iterations
    rows = job.rows if job.rows is not None else s.rows  # None: the worker sizes it (DUCKDB_ROWS=auto)
    budget = iterations * (s.timeout + s.settle + 2 * defaults.CLEANUP_GRACE_SECONDS + 8.0) + 20.0
    if axes.limits_ignored(job.strategy, job.pool):
        # the limits are ignored: the query runs to its end (the auto target, 3x for a loaded machine)
        query = (3 * calibrate.target_seconds(s.timeout, s.settle) if rows is None
                 else rows / SLOW_ROWS_PER_SECOND)
        budget += iterations * (query + 10)
    worker = run.start_worker(job, f"worker-{job.id}{_suffix(attempt)}", env)
    start = time.monotonic()
    out: dict = {"worker_pid": worker.pid}
    try:
        run.local.wait_ready([worker])
        out["ready_after"] = round(time.monotonic() - start, 1)
        params = {"queue": job.queue, "task": job.task, "iterations": iterations, "rows": rows,
                  "timeout": s.timeout, "run_id": s.run_id, "time_limits": job.time_limits, "wait": budget}
        sender = run.spawn(job.id, f"send-{job.id}{_suffix(attempt)}",
                           [python, "-m", "producer.send", "iterations", json.dumps(params)])
        data = run.local.result(sender, budget + 30)
        out["time_limits"] = data["time_limits"]  # the Celery time limits the sender sent with each task, or None
        out["records"] = data["records"]
        out["leftovers"] = observe_leftovers(job, data["records"], worker.pid)
    except (RuntimeError, TimeoutError) as exc:
        out["error"] = str(exc)
    finally:
        t = time.monotonic()
        out["worker_stop"] = run.local.stop(worker, grace=3.0)
        out["worker_stop_seconds"] = round(time.monotonic() - t, 1)
        out["seconds"] = round(time.monotonic() - start, 1)
    return out


def interpreters(s: Settings, env: Mapping[str, str], say) -> tuple[dict[str, str], dict[str, str]]:
    """Pythons to use, and why the missing ones are missing."""
    pythons, missing = {}, {}
    if s.pythons:
        for name in INTERPRETERS:
            if name in s.pythons:
                pythons[name] = s.pythons[name]
            else:
                missing[name] = f"no {name} interpreter given in CLAIMS_PYTHONS"
        return pythons, missing
    pythons["host"] = str(host_venv(env, say))
    for build in ("gil", "nogil"):
        python = paths.venv_dir(s.python_version, build, env) / "bin" / "python"
        if python.exists():
            pythons[build] = str(python)
        else:
            missing[build] = f"no {build} CPython {s.python_version} venv at {python} (scripts/lab setup)"
    return pythons, missing


def execute(s: Settings, env: Mapping[str, str], say=print) -> dict:
    pythons, missing = interpreters(s, env, say)
    have = {i: i in pythons for i in INTERPRETERS}
    jobs = plan(s, have)
    results: dict[str, dict] = {}
    started_at = time.monotonic()
    broker_desc = "not needed"
    # On leaving the block, however: what is still running is stopped, the marker swept (runner.LocalRun).
    with runner.LocalRun(s.run_id, env, logs=s.results_dir.resolve() / s.run_id / "logs", broker=s.broker,
                         broker_url=s.broker_url, drop=JOB_SETTINGS, grace=5.0, say=say, tag="[claims]") as local:
        run = Run(s, pythons, local)
        if any(isinstance(j, Worker) for j in jobs):
            _, broker_desc = local.start_broker()
        say(f"[claims] {len(jobs)} job(s), {s.parallel} at a time: "
            + ", ".join(sorted(pythons)) + (f" (missing: {', '.join(missing)})" if missing else ""))
        # The Celery workers first (the longer jobs), so the pool drains evenly.
        order = sorted(jobs, key=lambda j: 0 if isinstance(j, Worker) else 1)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=s.parallel)
        try:
            for job_id, data in pool.map(lambda job: run_job(run, job, say), order):
                results[job_id] = data
        finally:  # on Ctrl-C or an error: start nothing more; what runs is stopped on leaving the block
            pool.shutdown(wait=False, cancel_futures=True)
    return {
        "plan": {job.id: _spec(job) for job in jobs},  # what should have run: a missing record shows
        "run_id": s.run_id,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "kernel": platform.release()},
        "settings": {"quick": s.quick, "claims": list(s.claims), "ITERATIONS": s.iterations,
                     "DUCKDB_ROWS": "auto" if s.rows is None else s.rows,
                     "QUERY_SECONDS": round(calibrate.target_seconds(s.timeout, s.settle), 3) if s.rows is None else None,
                     "THREAD_STOP_SECONDS": thread_stop_seconds(s.timeout) if s.rows is None else None,
                     "DUCKDB_TIMEOUT": s.timeout, "SETTLE_SECONDS": s.settle, "CLAIMS_PARALLEL": s.parallel,
                     "overrides": s.overrides},
        "broker": broker_desc,
        "interpreters": {"available": sorted(pythons), "missing": missing, "versions": _versions(results)},
        "seconds": round(time.monotonic() - started_at, 1),
        "jobs": results,
    }


def run_job(run: Run, job: Plain | Worker, say) -> tuple[str, dict]:
    """One job of the plan: once more if it failed (a shared machine can disturb a run), and once more
    with PREMISE_RERUN_FACTOR x the rows if its query ended before its deadline; its id and record."""
    t = time.monotonic()
    data = _attempt(run, job)
    if data.get("error"):  # once more, and say so
        say(f"[claims] {job.id}: {data['error'].splitlines()[0][:160]}; running it again")
        first = data["error"]
        data = _attempt(run, job)
        data["first_attempt_error"] = first
    data["job"] = _spec(job)
    premise = None if data.get("error") else claims_report.premise_failure(data)
    if premise:  # the query ended before its deadline: once more, larger
        bigger = _larger(job, data)
        say(f"[claims] {job.id}: premise failed: {premise}; running it again with "
            f"{PREMISE_RERUN_FACTOR}x the rows")
        first = {"reason": premise, "sizing": claims_report.job_sizing(data),
                 "outcomes": [r.get("outcome") for r in data.get("records") or []] or None}
        data = _attempt(run, bigger)
        data["job"] = _spec(bigger)
        data["premise_rerun"] = first
        if not data.get("error") and (still := claims_report.premise_failure(data)):
            data["premise_failed"] = still
            say(f"[claims] {job.id}: premise failed again: {still}")
    data["sizing"] = claims_report.job_sizing(data)
    status = "error: " + data["error"].splitlines()[0][:120] if data.get("error") else "done"
    say(f"[claims] {job.id}: {status} ({time.monotonic() - t:.0f}s)"
        + (f"; {claims_report.describe_sizing(data['sizing'])}" if data.get("sizing") else ""))
    return job.id, data


def _attempt(run: Run, job: Plain | Worker) -> dict:
    """Run `job` once more: attempt n writes logs of its own (_suffix)."""
    n = run.tries[job.id] = run.tries.get(job.id, 0) + 1
    return run_plain(run, job, n) if isinstance(job, Plain) else run_worker(run, job, n)


def _spec(job: Plain | Worker) -> dict:
    return {"kind": type(job).__name__.lower(), **asdict(job)}


def _larger(job: Plain | Worker, data: dict) -> Plain | Worker:
    """The same job with PREMISE_RERUN_FACTOR x the rows it used (within the accepted range)."""
    sizing = claims_report.job_sizing(data) or {}
    used = max(sizing.get("rows") or [10_000_000])
    rows = min(100_000_000_000, used * PREMISE_RERUN_FACTOR)
    if isinstance(job, Plain):
        return replace(job, params={**job.params, "rows": rows})
    return replace(job, rows=rows)


def _versions(results: dict) -> dict:
    out: dict = {}
    for data in results.values():
        job = data.get("job", {})
        res = data.get("result") or {}
        if res.get("python"):
            out.setdefault(job["interp"], {}).update({"python": res["python"], "build": res["build"],
                                                      "default_start_method": res["default_start_method"]})
        for r in data.get("records") or []:
            if r.get("python"):
                out.setdefault(job["interp"], {}).update(
                    {"python": r["python"], "build": r["build"], "duckdb": r.get("duckdb")})
    return out


# --- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str], env: Mapping[str, str] | None = None, say=None) -> int:
    env = dict(os.environ if env is None else env)
    say = say or (lambda m: print(m, flush=True))
    return runner.command("lab claims", lambda: parse_args(argv, env), lambda s: _finish(s, execute(s, env, say), say))


def _finish(s: Settings, data: dict, say) -> int:
    """Write claims.json (the raw data first, then with the verdicts) and claims.md; the run's exit status."""
    out = s.results_dir.resolve() / s.run_id
    out.mkdir(parents=True, exist_ok=True)
    results_io.write_json(out / "claims.json", data, indent=1, sort_keys=True)  # the raw data first
    data["claims"] = claims_report.verdicts(data, s)
    results_io.write_json(out / "claims.json", data, indent=1, sort_keys=True)
    text = claims_report.markdown(data, s)
    results_io.write_text(out / "claims.md", text)
    say("")
    say(text)
    say(f"[claims] {out / 'claims.md'} and claims.json written in {data['seconds']:.0f}s")
    failed = [job for job, d in data["jobs"].items() if d.get("error")]
    if failed:
        print(f"lab claims: {len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    broken = [n for n, c in data["claims"].items() if c.get("report_error")]
    if broken:
        print(f"lab claims: the verdict rule of claim(s) {', '.join(broken)} failed (traceback above)", file=sys.stderr)
        return 1
    return 0
