"""`scripts/lab libraries [...]`: the timeout libraries from PyPI, each in real Celery workers, measured.

Every strategy of app/kernel/axes.py that is a library's documented call (`Strategy.library`:
timeout-decorator's two modes, pebble, wrapt-timeout-decorator, func-timeout, stopit) runs in one
real Celery worker per build x pool x workload, fed ITERATIONS of the lab's task
(`tasks.leak_demo`: a call sized to run QUERY_SECONDS under a DUCKDB_TIMEOUT deadline) by
`python -m producer.send iterations`. Two workloads by default: DuckDB's query, which releases the
GIL, and the builtin `sum(range(n))`, which holds it. Each cell says what the run measured:

- works (the caller got control back well before the call would have ended), late (only about
  when it would have ended: once the C call returned), ignored (no timeout at all: the call ran to
  its end), error, or not run (and why);
- the exception the caller saw, and control back after the deadline, p50 / max;
- what was left when the settle window ended: task processes still running, zombies, threads the
  call started still in the worker, and the CPU burned after the deadline.

Results: results/<run>/libraries.json (every record), libraries.md (one table per build); docs/libraries.md.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from app.kernel import axes, stats, tables  # stdlib-only modules

from . import parsing, pools, runner
from .parsing import COMMANDS, Parser
from .runner import UsageError

# Every library's documented call, and timeout-decorator's (the article's `process`); the lab's
# clean-up variant is not a library's.
STRATEGIES = tuple(s.name for s in axes.STRATEGY_LIST if s.library and not s.cleans_up)
WORKLOADS = ("duckdb", "builtin")  # a call that releases the GIL, and one that holds it
POOLS = ("solo", "threads", "prefork")
ITERATIONS = 3
TIMEOUT = 0.5  # stopit's SignalTimeout counts whole seconds: under one, it sets no alarm at all
QUERY_SECONDS = 8.0  # long enough that a library's own grace (pebble: 3 s to SIGKILL) is not "late"
SETTLE = 1.0


@dataclass(frozen=True)
class Settings(pools.RunSettings):
    workloads: tuple[str, ...] = WORKLOADS
    strategies: tuple[str, ...] = STRATEGIES
    iterations: int = ITERATIONS


@dataclass(frozen=True)
class Cell:
    """What one library did in one pool, on one build and workload, over the run's iterations."""

    build: str
    pool: str
    workload: str
    strategy: str
    verdict: str  # works | late | ignored | error | not run
    detail: str
    command: str = ""
    records: list = field(default_factory=list)

    def text(self) -> str:
        return f"{self.verdict}: {self.detail}" if self.detail else self.verdict


def command_for(build: str, pool: str, workload: str, strategy: str) -> str:
    """The command that reproduces one cell."""
    return f"scripts/lab libraries --builds {build} --pools {pool} --workloads {workload} --strategies {strategy}"


# --- verdicts -------------------------------------------------------------------------------------


# Control back after this share of the call's calibrated length came only about when the call would
# have ended on its own (a call that runs to its end takes at least about its length; a process
# library's own grace before SIGKILL, pebble's 3 s, stays well under it at QUERY_SECONDS)
LATE_SHARE = 0.7


def record_verdict(r: dict, timeout: float, query_seconds: float, strategy: str) -> str:
    """works / late / ignored / error for one record: a timeout is late when control came back only
    after LATE_SHARE of the call's calibrated length (`expected_seconds`, measured on the worker); so is
    the library's own timeout exception landing outside the call, once it had returned (stopit's async
    exception, pending while the C call ran, can fail the task in Celery's code instead)."""
    if r.get("outcome") == "timeout":
        expected = r.get("expected_seconds") or query_seconds
        return "late" if (r.get("elapsed") or 0.0) >= LATE_SHARE * expected else "works"
    if r.get("outcome") in ("failed", "error") and escaped(r, strategy):
        return "late"
    return pools.record_verdict(r, timeout, query_seconds)[0]


def escaped(r: dict, strategy: str) -> bool:
    """The task failed with the library's own timeout exception: raised after the call, outside it
    (a builtin the library raises, such as TimeoutError, could have come from anywhere)."""
    own = axes.STRATEGIES[strategy].own_exception
    return r.get("elapsed") is None and own is not None and r.get("exception_type") == own


def label(exception_type: str | None) -> str:
    """A short name that still says whose class it is: `timeout_decorator.TimeoutError`, builtin `TimeoutError`."""
    if not exception_type:
        return "none"
    package, _, rest = exception_type.partition(".")
    return f"{package}.{rest.rsplit('.', 1)[-1]}" if rest else package


def told_apart(records: list[dict], strategy: str) -> str:
    """Whether the caller can tell these timeouts from a real error: "yes" when every one raised the
    library's own class, "no" when one raised a builtin (TimeoutError, DuckDB's RuntimeError) that the
    call itself or anything else in the task raises too; "" when no record timed out."""
    own = axes.STRATEGIES[strategy].own_exception
    seen = {r.get("exception_type") for r in records if r.get("outcome") == "timeout" or escaped(r, strategy)}
    if not seen:
        return ""
    return "yes" if own is not None and seen == {own} else "no"


def left_behind(records: list[dict]) -> str:
    """What the last iteration left when its settle window ended, and the most threads any left."""
    last = records[-1]
    running = last.get("running_after_settle", 0)
    zombies = (last.get("settled") or {}).get("zombies", 0)
    threads = max(r.get("threads_left", 0) for r in records)
    thread_cpu = sum(r.get("threads_left_cpu", 0.0) for r in records)
    parts = [f"{running} running", f"{zombies} zombie{'s' if zombies != 1 else ''}",
             f"{threads} thread{'s' if threads != 1 else ''}" + (f" ({thread_cpu:.2f} CPU s)" if threads else "")]
    return "left " + ", ".join(parts)


def summarize(records: list[dict], timeout: float, query_seconds: float, strategy: str) -> tuple[str, str]:
    """(verdict, detail) of a cell: the commonest verdict of its records, then how and what was left."""
    if not records or any(r.get("exception_type") == "sender" for r in records):
        return "error", (records[0].get("exception_message") or "no record came back")[:160] if records else \
            "no record came back"
    verdicts = Counter(record_verdict(r, timeout, query_seconds, strategy) for r in records)
    verdict = verdicts.most_common(1)[0][0]
    if verdict == "error":
        return "error", pools.record_verdict(records[0], timeout, query_seconds)[1]
    mixed = "" if len(verdicts) == 1 else " (" + ", ".join(f"{v} {n}" for v, n in verdicts.items()) + ")"
    exceptions = sorted({label(r.get("exception_type")) for r in records})
    back = [r["overshoot"] for r in records if r.get("overshoot") is not None]
    elapsed = [r["elapsed"] for r in records if r.get("elapsed") is not None] or [0.0]
    seen = [r["seen_after"] for r in records if r.get("elapsed") is None and r.get("seen_after") is not None]
    when = (f"back +{stats.percentile(back, 0.5) * 1000:.0f}/+{max(back) * 1000:.0f} ms" if back
            else f"failed {stats.percentile(seen, 0.5):.1f} s after sending" if seen
            else f"ran {stats.percentile(elapsed, 0.5):.1f} s")
    told = told_apart(records, strategy)
    tail = f"; told apart: {told}" if told else ""
    return verdict, f"{'/'.join(exceptions)} {when}{mixed}; {left_behind(records)}{tail}"


# --- the run --------------------------------------------------------------------------------------


BUILDS = ("host", *axes.BUILDS)  # host: this machine's python3, in the lab's host venv


def interpreters(s: Settings, env: Mapping[str, str], say) -> tuple[dict[str, str], dict[str, str]]:
    """The python of each build asked for, and why a build is not run (no stand-ins: a row says what ran it)."""
    pythons, missing = {}, {}
    for build in s.builds:
        python = pools.build_python(build, s.python_version, env, say)
        if python is not None:
            pythons[build] = str(python)
        else:
            missing[build] = f"no CPython {s.python_version} {build} build (scripts/lab setup): not run"
    return pythons, missing


def run_batch(local: runner.LocalRun, s: Settings, python: str, where: tuple[str, str, str], calibration: Path,
              say) -> list[Cell]:
    """Every library strategy on one build, pool and workload: one worker each, all at once."""
    build, pool, workload = where
    # a queue outside the grammar (a host build has no queue of its own): strategy and workload are set
    jobs = {st: pools.Job(runner.WorkerSpec(f"libraries.{build}.{pool}.{workload}.{st}", build, st, pool,
                                            workload=workload, workload_env=True), s.iterations)
            for st in s.strategies}
    absent = runner.missing_modules(python, sorted({m for job in jobs.values() for m in job.spec.needs}))
    if absent:
        return [Cell(build, pool, workload, st, "not run", "; ".join(absent.values())) for st in s.strategies]
    t = time.monotonic()
    say(f"[libraries] {build} {pool} {workload}: {len(jobs)} worker(s) ...")
    got = pools.run_workers(local, python, jobs, calibration, timeout=s.timeout, query_seconds=s.query_seconds,
                            run_id=s.run_id, settle=SETTLE)
    cells = []
    for st in s.strategies:
        verdict, detail = summarize(got[st], s.timeout, s.query_seconds, st)
        cells.append(Cell(build, pool, workload, st, verdict, detail, command_for(build, pool, workload, st), got[st]))
        say(f"[libraries] {build} {pool} {workload} {st}: {cells[-1].text()}")
    say(f"[libraries] {build} {pool} {workload}: done in {time.monotonic() - t:.0f}s")
    return cells


def execute(s: Settings, env: Mapping[str, str], say=print) -> dict:
    pythons, missing = interpreters(s, env, say)
    cells: list[Cell] = []
    started_at = time.monotonic()
    with pools.local_run(s, env, say, "libraries") as local:
        _, broker_desc = local.start_broker()
        for build in s.builds:
            if build not in pythons:
                cells += [Cell(build, p, w, st, "not run", missing[build])
                          for p in s.pools for w in s.workloads for st in s.strategies]
                continue
            for workload in s.workloads:
                calibration = local.work / "calibration" / build / workload
                calibration.mkdir(parents=True, exist_ok=True)
                for pool in s.pools:
                    cells += run_batch(local, s, pythons[build], (build, pool, workload), calibration, say)
    return {"run_id": s.run_id, "broker": broker_desc, "timeout": s.timeout, "query_seconds": s.query_seconds,
            "iterations": s.iterations, "interpreters": pythons, "missing": missing,
            "seconds": round(time.monotonic() - started_at, 1), "cells": [asdict(c) for c in cells]}


# --- the tables -----------------------------------------------------------------------------------


def installed(cells: list[Cell], build: str, strategy: str) -> str:
    """The strategy's library and the version its workers on `build` reported ("pebble 5.2.3")."""
    versions = {r.get("library_version") for c in cells if (c.build, c.strategy) == (build, strategy)
                for r in c.records if r.get("library_version")}
    return " ".join([axes.STRATEGIES[strategy].library, *sorted(versions)])


def markdown(data: dict) -> str:
    cells = [Cell(**c) for c in data["cells"]]
    at = {(c.build, c.pool, c.workload, c.strategy): c for c in cells}
    builds, pool_names = list(dict.fromkeys(c.build for c in cells)), list(dict.fromkeys(c.pool for c in cells))
    rows_of = list(dict.fromkeys((c.strategy, c.workload) for c in cells))
    out = [f"# The timeout libraries in Celery workers (run {data['run_id']})", "",
           f"Each cell: one real worker, {data['iterations']} iteration(s) of the lab's task with a "
           f"{data['timeout']:g} s deadline on a call sized to run {data['query_seconds']:g} s (calibrated on the "
           f"worker's interpreter), {data['broker']}. works / late (only once the C call returned) / ignored (no "
           "timeout) / error; the exception the caller saw; control back after the deadline, p50/max; what was "
           "left when the settle window ended: task processes running, zombies, threads the call started; "
           "told apart: whether every timeout raised the library's own class (yes), or a builtin the call or the "
           "task could raise for another reason too (no: TimeoutError, DuckDB's RuntimeError).", ""]
    for build in builds:
        note = data["missing"].get(build)
        out += [f"## {build} build" + (f" ({note})" if note else ""), ""]
        rows = [[f"`{st}` ({installed(cells, build, st)})", w]
                + [at[(build, p, w, st)].text() if (build, p, w, st) in at else "-" for p in pool_names]
                for st, w in rows_of]
        out += [tables.render(["strategy (library)", "workload", *pool_names], rows, markdown=True), ""]
    out += ["Reproduce a cell: `scripts/lab libraries --builds <build> --pools <pool> --workloads <workload> "
            "--strategies <strategy>`.", ""]
    return "\n".join(out)


# --- the command ----------------------------------------------------------------------------------


LISTS = {"builds": (BUILDS, BUILDS), "pools": (axes.POOL_NAMES, POOLS),
         "workloads": (axes.WORKLOAD_NAMES, WORKLOADS), "strategies": (STRATEGIES, STRATEGIES)}


def _parser():
    p = Parser(prog="scripts/lab libraries", error_type=UsageError,
               description=f"{COMMANDS['libraries']}. One worker per build x pool x workload x library strategy, "
                           "docs/libraries.md.")
    pools.add_run_options(p, {flag: (choices, ",".join(default)) for flag, (choices, default) in LISTS.items()},
                          TIMEOUT, QUERY_SECONDS)
    p.add_argument("--iterations", metavar="N", expects="a whole number from 1 to 20",
                   help=f"tasks per worker (default {ITERATIONS})")
    return p


def parse_args(args: Sequence[str], env: Mapping[str, str]) -> Settings:
    ns = _parser().parse_intermixed_args(list(args))
    picked = {flag: parsing.choices(flag.upper(), getattr(ns, flag), choices) if getattr(ns, flag) is not None
              else tuple(default) for flag, (choices, default) in LISTS.items()}
    iterations = parsing.number("--iterations", ns.iterations, ITERATIONS, 1, 20, "a whole number")
    if iterations != int(iterations):
        raise UsageError(f"--iterations {ns.iterations}: expected a whole number from 1 to 20")
    timeout = parsing.number("--timeout", ns.timeout, TIMEOUT, 0.05, 5.0)
    query = parsing.number("--query-seconds", ns.query_seconds, QUERY_SECONDS, 1.0, 60.0)
    pools.check_query_seconds(timeout, query)
    return Settings(**Settings.common(picked["builds"], picked["pools"], timeout, query, env, "libraries"),
                    workloads=picked["workloads"], strategies=picked["strategies"], iterations=int(iterations))


def main(argv: Sequence[str], env: Mapping[str, str] | None = None, say=None) -> int:
    env = dict(os.environ if env is None else env)
    return pools.command_main("libraries", lambda: parse_args(argv, env), execute, markdown, env,
                              say or (lambda m: print(m, flush=True)))
