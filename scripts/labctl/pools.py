"""`scripts/lab pools [--builds ...] [--pools ...] [--mechanisms ...]`: what each Celery pool can do, measured.

The pool-capability table of docs/pools.md: for every build x pool, one real Celery worker per
mechanism (Celery's soft and hard time limits, --max-tasks-per-child, SIGALRM in the task's
thread, timeout-decorator's process fallback, the interrupt watchdog thread, DuckDB's own
deadline), each fed the lab's task (`tasks.leak_demo`, a calibrated DuckDB query of
QUERY_SECONDS under a DUCKDB_TIMEOUT deadline) by `python -m producer.send iterations`, the
producer's own enqueue and collect. Each cell is what the run measured: works (with the
exception the task saw and the overshoot), ignored (the query ran to its end), late (stopped
only once the C call returned), error (the exception), or not run (and why). Where Celery's
documentation says a pool supports a feature and the run says otherwise (or the reverse), the
cell says so. The processes are runner.LocalRun's: stopped by pid when each batch ends.

Results: results/<run>/pools.json (every record and verdict), pools.md (the tables), logs/.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from app.kernel import axes, results_io, settings, tables  # stdlib-only modules

from . import parsing, paths, runner
from .parsing import ALL, COMMANDS, Parser
from .runner import UsageError
from .venvs import host_venv

# A short deadline and a query that outlives it by far, so "ignored" (the query ran to its end)
# and "late" (stopped only when the C call returned) stand apart from "works" on any machine.
TIMEOUT = 0.3
QUERY_SECONDS = 6.0
SETTLE = 0.5
# A hard limit that works returns its failure soon after the deadline (the pool notices, kills,
# reports: 0.4 s after sending on RabbitMQ here, 1.3 s on the embedded broker with both cores busy,
# where billiard looks at the limits only once a second: docs/pools.md);
# one that stops the task only when the C call returns, after the whole query. QUERY_SECONDS is at
# least KILL_GAP past the deadline, so halfway between tells them apart.
KILL_GAP = 3.0
CELERY_DOCS = "docs/userguide/workers.rst (Celery 5.x)"


@dataclass(frozen=True)
class Mechanism:
    """One row of the capability table: how the lab exercises it and what Celery's docs say of it."""

    name: str
    title: str
    strategy: str  # the worker's strategy (app/kernel/axes.py)
    limits: str = ""  # Celery limits sent with the task: "soft" (soft_time_limit alone), "hard" (time_limit alone)
    tasks: int = 1
    max_tasks_per_child: int | None = None
    documented: tuple[str, ...] | None = None  # the pools Celery's docs say support it; None: not a Celery feature
    docs_ref: str = ""


MECHANISMS = (
    Mechanism("soft-limit", "soft time limit (`soft_time_limit`)", "prefork-time-limit", limits="soft",
              documented=("prefork", "gevent"), docs_ref=f"{CELERY_DOCS}, Time Limits: pool support prefork/gevent"),
    Mechanism("hard-limit", "hard time limit (`time_limit`)", "prefork-time-limit", limits="hard",
              documented=("prefork", "gevent"), docs_ref=f"{CELERY_DOCS}, Time Limits: pool support prefork/gevent"),
    Mechanism("max-tasks-per-child", "`--max-tasks-per-child=1`", "deadline", tasks=2, max_tasks_per_child=1,
              documented=("prefork",), docs_ref=f"{CELERY_DOCS}, Max tasks per child setting: pool support prefork"),
    Mechanism("signals", "SIGALRM in the task (timeout-decorator, `use_signals=True`)", "signals"),
    Mechanism("process", "process fallback (timeout-decorator, `use_signals=False`)", "process"),
    Mechanism("interrupt", "a watchdog thread calls `con.interrupt()`", "interrupt"),
    Mechanism("deadline", "DuckDB's own `max_execution_time`", "deadline"),
)
MECHANISM_NAMES = tuple(m.name for m in MECHANISMS)
BY_NAME = {m.name: m for m in MECHANISMS}


@dataclass(frozen=True)
class Cell:
    """What one pool did with one mechanism on one build."""

    build: str
    pool: str
    mechanism: str
    verdict: str  # works | ignored | late | error | not run
    detail: str
    documented: bool | None = None  # Celery's docs say the pool supports it (None: the docs say nothing)
    command: str = ""
    records: list = field(default_factory=list)

    @property
    def disagrees(self) -> bool:
        """Celery's docs and the run disagree: documented but not working, or working though undocumented."""
        if self.documented is None or self.verdict == "not run":
            return False
        return self.documented != (self.verdict == "works")

    def text(self) -> str:
        docs = {True: " (docs: supported)", False: " (docs: not supported)"}.get(self.documented, "") \
            if self.disagrees else ""
        return f"{self.verdict}: {self.detail}{docs}" if self.detail else self.verdict


# --- verdicts -------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:+.0f} ms"


def verdict(m: Mechanism, records: list[dict], timeout: float, query_seconds: float) -> tuple[str, str]:
    """(verdict, detail) of a mechanism from its records: each rule reads what the task reported."""
    if not records:
        return "error", "no record came back"
    if m.name == "max-tasks-per-child":
        pids = [r.get("pid") for r in records]
        if None in pids or len(pids) < 2:
            return record_verdict(records[0], timeout, query_seconds)
        if len(set(pids)) == len(pids):
            return "works", f"each task in a new pool process (pids {', '.join(map(str, pids))})"
        return "ignored", f"both tasks ran in pid {pids[0]}"
    return record_verdict(records[0], timeout, query_seconds)


def record_verdict(r: dict, timeout: float, query_seconds: float) -> tuple[str, str]:
    """(verdict, detail) of one record: works, ignored, late or error, and how."""
    outcome = r.get("outcome")
    exc = r.get("exception_type") or ""
    if outcome == "timeout":
        own = len(r.get("leftovers") or [])  # the call's own processes still there when it returned
        left = ", leaves its process running" if own == 1 else f", leaves {own} processes running" if own else ""
        return "works", f"{exc.rsplit('.', 1)[-1]} {_ms(r.get('overshoot'))} after the deadline{left}"
    if outcome == "ok":
        elapsed = r.get("elapsed") or 0.0
        if elapsed > timeout:
            return "ignored", f"the query ran to its end ({elapsed:.1f} s, deadline {timeout:g} s)"
        return "error", f"premise failed: the query finished in {elapsed:.2f} s, before the deadline"
    killed = exc.rsplit(".", 1)[-1] in ("TimeLimitExceeded", "WorkerLostError")
    if outcome == "killed" or (outcome == "failed" and killed):
        seen = r.get("seen_after")
        if seen is None:
            return "works", f"the task was killed ({exc})"
        # killed near the deadline, or only once the query had run to its end: the first is
        # back well before halfway to QUERY_SECONDS (parse_args keeps that >= 1.5 s past the deadline)
        if seen < (timeout + query_seconds) / 2:
            return "works", f"the task was killed ({exc}), its result back {seen:.1f} s after sending"
        return "late", f"killed ({exc}) only {seen:.1f} s after sending: once the C call returned"
    if outcome in ("error", "failed"):
        message = (r.get("exception_message") or "").strip().splitlines()[0][:90] if r.get("exception_message") else ""
        return "error", f"{exc.rsplit('.', 1)[-1]}: {message}" if message else exc or "failed"
    return "error", f"{outcome}: {r.get('exception_message') or ''}".strip()


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    """What every capability run is given (this one, and scripts/lab libraries)."""

    builds: tuple[str, ...]
    pools: tuple[str, ...]
    timeout: float
    query_seconds: float
    broker: str
    results_dir: Path
    run_id: str
    python_version: str

    @staticmethod
    def common(builds, pools, timeout: float, query: float, env: Mapping[str, str], prefix: str) -> dict:
        """The shared fields, the rest read from the environment's settings (RUN_ID default: `prefix-<time>`)."""
        spec = settings.SETTINGS
        run_id = spec["RUN_ID"].read(env, default=f"{prefix}-" + time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4])
        return dict(builds=builds, pools=pools, timeout=timeout, query_seconds=query, broker=spec["LAB_BROKER"].read(env),
                    results_dir=Path(spec["RESULTS_DIR"].read(env)), run_id=run_id,
                    python_version=spec["PYTHON_VERSION"].read(env))


@dataclass(frozen=True)
class Settings(RunSettings):
    mechanisms: tuple[str, ...] = ()


def command_for(build: str, pool: str, mechanism: str) -> str:
    """The command that reproduces one cell."""
    return f"scripts/lab pools --builds {build} --pools {pool} --mechanisms {mechanism}"


def build_python(build: str, python_version: str, env: Mapping[str, str], say) -> Path | None:
    """A build's venv python: `host` is this machine's python3 in the lab's host venv; a 3.14 build's
    when `scripts/lab setup` made it, else None."""
    if build == "host":
        return Path(host_venv(env, say))
    python = paths.venv_dir(python_version, build, env) / "bin" / "python"
    return python if python.exists() else None


def interpreters(s: Settings, env: Mapping[str, str], say) -> tuple[dict[str, str], dict[str, str]]:
    """The python of each build asked for, and why a build is not run; this machine's python3
    stands in for the GIL build when the 3.14 builds are not there (said in the table)."""
    pythons, missing = {}, {}
    for build in s.builds:
        python = build_python(build, s.python_version, env, say)
        if python is not None:
            pythons[build] = str(python)
        elif build == "gil":
            pythons[build] = str(build_python("host", s.python_version, env, say))
            missing[build] = f"no CPython {s.python_version} gil build (scripts/lab setup): this machine's python3 stands in"
        else:
            missing[build] = f"no CPython {s.python_version} {build} build (scripts/lab setup): not run"
    return pythons, missing


def _worker_spec(build: str, pool: str, m: Mechanism, run_id: str) -> runner.WorkerSpec:
    # a queue outside the grammar (the worker does not check its pool against it); the strategy is set
    return runner.WorkerSpec(f"pools.{build}.{pool}.{m.name}", build, m.strategy, pool,
                             max_tasks_per_child=m.max_tasks_per_child)


def _options(m: Mechanism, timeout: float) -> dict:
    return {"soft": {"soft_time_limit": timeout}, "hard": {"time_limit": timeout}}.get(m.limits, {})


@dataclass(frozen=True)
class Job:
    """One worker of a batch and what is sent to it: `tasks` iterations of the lab's task."""

    spec: runner.WorkerSpec
    tasks: int = 1
    options: dict = field(default_factory=dict)  # Celery options sent with each task (time limits)


def run_workers(local: runner.LocalRun, python: str, jobs: Mapping[str, Job], calibration: Path, *,
                timeout: float, query_seconds: float, run_id: str, settle: float = SETTLE) -> dict[str, list[dict]]:
    """One worker per job, all at once, each fed its tasks by `python -m producer.send iterations`;
    the records by job. Every worker is stopped (by pid) before it returns."""
    env = {"SETTLE_SECONDS": str(settle), "DUCKDB_THREADS": "1", "CALIBRATION_DIR": str(calibration)}
    started = {}
    try:
        for n, (name, job) in enumerate(jobs.items()):
            started[name] = local.start_worker(job.spec, python, env, name=f"worker {job.spec.queue}")
            if n == 0:
                # the first worker of a build measures the query's speed alone (its readiness comes
                # after), the others read it from CALIBRATION_DIR instead of measuring all at once
                local.wait_ready([started[name]])
        local.wait_ready(list(started.values()))

        def send(name: str) -> list[dict]:
            job = jobs[name]
            # every worker's call may run to its end at once, sharing the cores: as long as that takes
            crowd = max(3.0, len(jobs) / (os.cpu_count() or 1) + 1)
            wait = job.tasks * (query_seconds * crowd + settle + 15)
            params = {"queue": job.spec.queue, "task": "tasks.leak_demo", "iterations": job.tasks, "rows": None,
                      "timeout": timeout, "query_seconds": query_seconds, "run_id": run_id,
                      "options": job.options, "wait": wait}
            sender = local.spawn(f"send {job.spec.queue}", [python, "-m", "producer.send", "iterations", json.dumps(params)])
            try:
                return local.result(sender, wait + 30)["records"]
            except RuntimeError as exc:  # no result line
                return [{"outcome": "error", "exception_type": "sender", "exception_message": str(exc)}]

        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
            futures = {name: ex.submit(send, name) for name in jobs}
            return {name: f.result() for name, f in futures.items()}
    finally:
        # all at once: each worker's warm shutdown (up to the grace, then SIGKILL) overlaps the others'
        with concurrent.futures.ThreadPoolExecutor(max(1, len(started))) as ex:
            list(ex.map(lambda p: local.stop(p, grace=3.0), list(started.values())))


def run_batch(local: runner.LocalRun, s: Settings, python: str, build: str, pool: str,
              mechanisms: Sequence[Mechanism], calibration: Path) -> dict[str, list[dict]]:
    """One worker per mechanism of `pool` on `build`, all at once; their records by mechanism."""
    jobs = {m.name: Job(_worker_spec(build, pool, m, s.run_id), m.tasks, _options(m, s.timeout)) for m in mechanisms}
    return run_workers(local, python, jobs, calibration, timeout=s.timeout, query_seconds=s.query_seconds,
                       run_id=s.run_id)


def local_run(s, env: Mapping[str, str], say, name: str) -> runner.LocalRun:
    """The LocalRun of a capability run (`s`: its run_id, results_dir, broker): the workers' variables
    come from each WorkerSpec, never from the caller's environment."""
    return runner.LocalRun(s.run_id, env, logs=s.results_dir.resolve() / s.run_id / "logs", broker=s.broker,
                           broker_url=env.get("BROKER_URL") or None,
                           drop=("PYTEST_*", "QUEUE", "WORKER_NAME", "TIMEOUT_STRATEGY", "START_METHOD", "WORKLOAD",
                                 "SETTLE_SECONDS", "DUCKDB_THREADS", "PYTHONPATH", "PYTHONHOME"),
                           grace=5.0, say=say, tag=f"[{name}]")


def execute(s: Settings, env: Mapping[str, str], say=print) -> dict:
    pythons, missing = interpreters(s, env, say)
    cells: list[Cell] = []
    chosen = [BY_NAME[n] for n in s.mechanisms]
    started_at = time.monotonic()
    with local_run(s, env, say, "pools") as local:
        _, broker_desc = local.start_broker()
        for build in s.builds:
            if build not in pythons:
                cells += [Cell(build, p, m.name, "not run", missing[build]) for p in s.pools for m in chosen]
                continue
            calibration = local.work / "calibration" / build
            calibration.mkdir(parents=True, exist_ok=True)
            for pool in s.pools:
                absent = runner.missing_modules(pythons[build], [axes.POOLS[pool].package] if axes.POOLS[pool].package else [])
                if absent:
                    why = "; ".join(absent.values())
                    say(f"[pools] {build} {pool}: not run: {why}")
                    cells += [Cell(build, pool, m.name, "not run", why) for m in chosen]
                    continue
                t = time.monotonic()
                say(f"[pools] {build} {pool}: {len(chosen)} worker(s) ...")
                got = run_batch(local, s, pythons[build], build, pool, chosen, calibration)
                for m in chosen:
                    v, detail = verdict(m, got[m.name], s.timeout, s.query_seconds)
                    documented = None if m.documented is None else pool in m.documented
                    cells.append(Cell(build, pool, m.name, v, detail, documented, command_for(build, pool, m.name),
                                      got[m.name]))
                    say(f"[pools] {build} {pool} {m.name}: {cells[-1].text()}")
                say(f"[pools] {build} {pool}: done in {time.monotonic() - t:.0f}s")
    return {"run_id": s.run_id, "broker": broker_desc, "timeout": s.timeout, "query_seconds": s.query_seconds,
            "interpreters": pythons, "missing": missing, "seconds": round(time.monotonic() - started_at, 1),
            "cells": [asdict(c) for c in cells]}


# --- the tables -----------------------------------------------------------------------------------


def markdown(data: dict) -> str:
    cells = [Cell(**c) for c in data["cells"]]
    builds = list(dict.fromkeys(c.build for c in cells))
    pools = list(dict.fromkeys(c.pool for c in cells))
    mechanisms = list(dict.fromkeys(c.mechanism for c in cells))
    at = {(c.build, c.pool, c.mechanism): c for c in cells}
    out = [f"# What each Celery pool can do with a long C call (run {data['run_id']})", "",
           f"Each cell: one real worker, the lab's task with a {data['timeout']:g} s deadline on a query sized to run "
           f"{data['query_seconds']:g} s (calibrated on the worker's interpreter), {data['broker']}. "
           "works / ignored (ran to its end) / late (stopped only when the C call returned) / error.", ""]
    for build in builds:
        note = data["missing"].get(build)
        out += [f"## {build} build" + (f" ({note})" if note else ""), ""]
        rows = [[BY_NAME[m].title] + [at[(build, p, m)].text() if (build, p, m) in at else "-" for p in pools]
                for m in mechanisms]
        out += [tables.render(["mechanism", *pools], rows, markdown=True), ""]
        odd = [c for c in cells if c.build == build and c.disagrees]
        if odd:
            out += ["Where Celery's docs and the run disagree:", ""]
            out += [f"- {c.pool}, {BY_NAME[c.mechanism].title}: the docs say "
                    f"{'supported' if c.documented else 'not supported'} ({BY_NAME[c.mechanism].docs_ref}); "
                    f"measured: {c.verdict}. `{c.command}`" for c in odd]
            out.append("")
    out += ["Reproduce a cell: `scripts/lab pools --builds <build> --pools <pool> --mechanisms <mechanism>`.", ""]
    return "\n".join(out)


# --- the command ----------------------------------------------------------------------------------


def _parser():
    p = Parser(prog="scripts/lab pools", error_type=UsageError,
               description=f"{COMMANDS['pools']}. One worker per build x pool x mechanism, docs/pools.md.")
    lists = {"builds": axes.BUILDS, "pools": axes.POOL_NAMES, "mechanisms": MECHANISM_NAMES}
    add_run_options(p, {flag: (choices, ALL) for flag, choices in lists.items()}, TIMEOUT, QUERY_SECONDS)
    return p


def add_run_options(p: Parser, lists: Mapping[str, tuple[Sequence[str], str]], timeout: float,
                    query_seconds: float) -> None:
    """What every capability run takes: a list option per axis (its choices, its default), --timeout, --query-seconds."""
    for flag, (choices, default) in lists.items():
        expects = f"{ALL}, or a comma-separated list of {', '.join(choices)}"
        p.add_argument(f"--{flag}", metavar="LIST", expects=expects, help=f"{expects} (default {default})")
    p.add_argument("--timeout", metavar="SECONDS", expects="seconds from 0.05 to 5",
                   help=f"the deadline of each call (default {timeout:g})")
    p.add_argument("--query-seconds", metavar="SECONDS", expects="seconds from 1 to 60",
                   help=f"how long the calibrated call would run (default {query_seconds:g})")


def check_query_seconds(timeout: float, query: float) -> None:
    """A call that outlives its deadline by far: 4 x --timeout, and --timeout + KILL_GAP (UsageError if not)."""
    least = max(4 * timeout, timeout + KILL_GAP)
    if query < least:
        raise UsageError(f"--query-seconds {query:g}: expected at least {least:g} (4 x --timeout, and "
                         f"--timeout + {KILL_GAP:g})")


def parse_args(args: Sequence[str], env: Mapping[str, str]) -> Settings:
    ns = _parser().parse_intermixed_args(list(args))
    picked = {flag: parsing.choices(flag.upper(), getattr(ns, flag), choices) if getattr(ns, flag) is not None
              else tuple(choices)
              for flag, choices in (("builds", axes.BUILDS), ("pools", axes.POOL_NAMES),
                                    ("mechanisms", MECHANISM_NAMES))}
    timeout = parsing.number("--timeout", ns.timeout, TIMEOUT, 0.05, 5.0)
    query = parsing.number("--query-seconds", ns.query_seconds, QUERY_SECONDS, 1.0, 60.0)
    check_query_seconds(timeout, query)
    return Settings(**Settings.common(picked["builds"], picked["pools"], timeout, query, env, "pools"),
                    mechanisms=picked["mechanisms"])


def command_main(name: str, parse, execute_run, render, env: Mapping[str, str], say) -> int:
    """`scripts/lab <name>`: parse, run, write results/<run>/<name>.json and <name>.md, print the table."""

    def act(s) -> int:
        data = execute_run(s, env, say)
        out = s.results_dir.resolve() / s.run_id
        out.mkdir(parents=True, exist_ok=True)
        results_io.write_json(out / f"{name}.json", data, indent=1, sort_keys=True)
        text = render(data)
        results_io.write_text(out / f"{name}.md", text)
        say("")
        say(text)
        say(f"[{name}] {out / f'{name}.md'} and {name}.json written in {data['seconds']:.0f}s")
        return 0

    return runner.command(f"lab {name}", parse, act)


def main(argv: Sequence[str], env: Mapping[str, str] | None = None, say=None) -> int:
    env = dict(os.environ if env is None else env)
    return command_main("pools", lambda: parse_args(argv, env), execute, markdown, env,
                        say or (lambda m: print(m, flush=True)))
