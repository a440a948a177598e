"""`scripts/lab run|quick|down`: the lab on this machine, no Docker.

A run starts a broker (the one in BROKER_URL, else a private RabbitMQ node if rabbitmq-server
is installed, else kombu's filesystem transport, which needs no server), one Celery worker per
target queue, then the producer; at the end it stops exactly what it started, by pid, and
sweeps any process still carrying the run's marker. The broker, the workers, the state record
and the stopping are runner.LocalRun's, shared with `scripts/lab claims`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from app.kernel import axes, defaults, settings  # stdlib-only modules of the worker side
from app.kernel.config import WorkerConfig
from app.kernel.envparse import ConfigError
from producer.config import ProducerConfig

from . import parsing, paths, procs, runner
from .parsing import ALL, COMMANDS, Parser
from .runner import LocalRun, UsageError, WorkerSpec
from .venvs import host_venv

BROKERS = settings.LAB_BROKERS
# What `scripts/lab run|quick VARIABLE=value` accepts: a typo must not run with defaults unnoticed.
# The variables app/kernel/settings.py says `scripts/lab` reads (TIMEOUT_STRATEGY, QUEUE and WORKER_NAME
# are not among them: each worker's queue sets them).
OVERRIDES = settings.names("scripts/lab")


def worker_spec(queue: str) -> WorkerSpec:
    spec = axes.parse_queue(queue)
    return WorkerSpec(queue, spec.build, spec.strategy, spec.pool, workload=spec.workload)


def _parser(mode: str):
    """The argparse parser of `scripts/lab run|quick|down`: what their --help prints."""
    if mode == "down":
        p = Parser(prog="scripts/lab down", error_type=UsageError,
                   description=f"{COMMANDS['down']}: the processes recorded by runs whose scripts/lab is gone, "
                               "then any orphaned lab process. Takes no arguments.")
        p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
        return p
    note = ("quick runs on this machine's python3 and skips nogil queues (they need `scripts/lab setup`)."
            if mode == "quick" else "run needs the CPython 3.14 builds of `scripts/lab setup`.")
    variables = "\n".join(["variables (VARIABLE=value, also read from the environment; README.md, Settings):",
                           *settings.usage_lines(settings.SETTINGS[name] for name in OVERRIDES)])
    p = Parser(prog=f"scripts/lab {mode}", error_type=UsageError, formatter_class=parsing.RawDescriptionFormatter,
               description=f"{COMMANDS[mode]}.\n{note}", epilog=variables)
    strategies = f"{ALL}, or a comma-separated list of {', '.join(axes.STRATEGY_NAMES)}"
    builds = f"{ALL}, or a comma-separated list of {', '.join(axes.BUILDS)}"
    p.add_argument("--strategies", metavar="LIST", expects=strategies,
                   help=f"the strategy matrix instead of the article's workers, queues <build>.<strategy>: {strategies}")
    p.add_argument("--builds", metavar="LIST", expects=builds, help=f"with --strategies: {builds} (default {ALL})")
    pools = f"{ALL}, or a comma-separated list of {', '.join(axes.POOL_NAMES)}"
    p.add_argument("--pools", metavar="LIST", expects=pools,
                   help=f"with --strategies: the Celery pools, {pools} (default: each strategy's own; docs/pools.md)")
    workloads = f"{ALL}, or a comma-separated list of {', '.join(axes.WORKLOAD_NAMES)}"
    p.add_argument("--workloads", metavar="LIST", expects=workloads,
                   help=f"with --strategies: the C calls timed out, {workloads} (default duckdb; docs/workloads.md)")
    p.add_argument("overrides", nargs="*", metavar="VARIABLE=value", help="a setting for this run, e.g. ITERATIONS=5")
    return p


def parse_overrides(args: Sequence[str], mode: str = "run") -> dict[str, str]:
    """`KEY=value` words after the command, e.g. `scripts/lab run ITERATIONS=5`.

    `--strategies a,b [--builds gil,nogil] [--pools p,q] [--workloads w]` is shorthand for the
    strategy matrix's queues, TARGET_QUEUES=gil.a,gil.b,nogil.a,nogil.b (builds x strategies x
    pools x workloads, validated like any TARGET_QUEUES); `all` means every value of the axis. `-h`/`--help` prints the usage and raises SystemExit(0).
    """
    ns = _parser(mode).parse_intermixed_args(list(args))
    out: dict[str, str] = {}
    for arg in ns.overrides:
        key, sep, value = arg.partition("=")
        if not sep or not key.isupper():
            raise UsageError(f"{arg!r}: expected VARIABLE=value (e.g. ITERATIONS=5)")
        if key not in OVERRIDES:
            raise UsageError(f"{arg!r}: unknown variable {key}, expected one of {', '.join(OVERRIDES)}")
        out[key] = value
    for flag in ("builds", "pools", "workloads"):
        if getattr(ns, flag) is not None and ns.strategies is None:
            raise UsageError(f"--{flag} goes with --strategies (e.g. --strategies {ALL} --{flag} {getattr(ns, flag)})")
    if ns.strategies is not None:
        strategies = parsing.choices("STRATEGIES", ns.strategies, axes.STRATEGY_NAMES)
        builds = parsing.choices("BUILDS", ns.builds, axes.BUILDS) if ns.builds is not None else axes.BUILDS
        pools = parsing.choices("POOLS", ns.pools, axes.POOL_NAMES) if ns.pools is not None else (None,)
        workloads = (parsing.choices("WORKLOADS", ns.workloads, axes.WORKLOAD_NAMES) if ns.workloads is not None
                     else (None,))
        out["TARGET_QUEUES"] = ",".join(axes.matrix_queues(builds, strategies, pools, workloads=workloads))
    return out


@dataclass
class Plan:
    mode: str  # quick | run
    env: dict[str, str]
    producer: ProducerConfig
    workers: list[WorkerSpec]
    broker: str  # auto | rabbitmq | filesystem
    skipped: list[str] = field(default_factory=list)


def make_plan(mode: str, overrides: Mapping[str, str], base_env: Mapping[str, str]) -> Plan:
    """Validate every setting of producer and workers before anything starts."""
    env = {**base_env, **overrides}
    if mode == "quick" and "TARGET_QUEUES" not in overrides and not base_env.get("TARGET_QUEUES"):
        env["TARGET_QUEUES"] = ",".join(defaults.TARGET_QUEUES)
    elif mode == "run" and not env.get("TARGET_QUEUES"):
        env["TARGET_QUEUES"] = ",".join(axes.ARTICLE_WORKERS)
    producer = ProducerConfig.from_env(env)
    broker = settings.SETTINGS["LAB_BROKER"].read(env)
    settings.SETTINGS["LAB_CACHE"].read(env, default=str(paths.cache_root(env)))
    settings.SETTINGS["WHEELHOUSE"].read(env)
    workers, skipped = [], []
    for queue in producer.target_queues:
        spec = worker_spec(queue)
        if mode == "quick" and spec.build == "nogil":
            skipped.append(queue)
            continue
        strategy = axes.STRATEGIES[spec.strategy]
        if not strategy.runs_on(spec.workload):
            skipped.append(f"{queue} ({spec.workload} has no {strategy.stop} stop)")
            continue
        WorkerConfig.from_env({**env, **spec.env()})  # same checks the worker makes at start-up
        workers.append(spec)
    if not workers:
        raise ConfigError("TARGET_QUEUES", env["TARGET_QUEUES"], "at least one queue this mode can run (quick runs gil builds only)")
    if skipped:
        env["TARGET_QUEUES"] = ",".join(w.queue for w in workers)
        producer = ProducerConfig.from_env(env)
    return Plan(mode, env, producer, workers, broker, skipped)


# --- interpreters ---------------------------------------------------------------------------------


def built_python(build: str, env: Mapping[str, str]) -> Path:
    version = env.get("PYTHON_VERSION") or paths.DEFAULT_PYTHON_VERSION
    python = paths.venv_dir(version, build, env) / "bin" / "python"
    if not python.exists():
        raise UsageError(f"no {build} interpreter at {python} (PYTHON_VERSION={version}): run `scripts/lab setup` first")
    return python


# --- the run --------------------------------------------------------------------------------------


def run(plan: Plan, say=print) -> int:
    env = plan.env
    if plan.mode == "quick":
        pythons = {"gil": str(host_venv(env, say))}
    else:
        pythons = {w.build: str(built_python(w.build, env)) for w in plan.workers}
        pythons.setdefault("gil", str(built_python("gil", env)))
    producer_python = pythons["gil"]
    # a pool or workload whose package this interpreter lacks (gevent on 3.14t): said, and the rest measured
    runnable = []
    for spec in plan.workers:
        missing = runner.missing_modules(pythons[spec.build], spec.needs)
        if missing:
            why = f"{'; '.join(missing.values())} on the {spec.build} build"
            plan.skipped.append(f"{spec.queue} ({why})")
            say(f"[lab] skipped {spec.queue}: {why}")
        else:
            runnable.append(spec)
    if not runnable:
        raise UsageError("TARGET_QUEUES: nothing left to run on these interpreters (see the skipped lines above)")
    if len(runnable) < len(plan.workers):
        env = {**env, "TARGET_QUEUES": ",".join(w.queue for w in runnable)}
        plan.workers = runnable

    run_id = plan.producer.run_id
    results = Path(plan.producer.results_dir).resolve()
    with LocalRun(run_id, env, logs=results / run_id / "logs", broker=plan.broker, broker_url=env.get("BROKER_URL"),
                  say=say) as local:
        local.env["CALIBRATION_DIR"] = str(local.work / "calibration")  # workers of one build share one measurement
        _, broker_desc = local.start_broker()
        workers = []
        for spec in plan.workers:
            p = local.start_worker(spec, pythons[spec.build])
            workers.append(p)
            say(f"[lab] worker {spec.queue}: pid {p.pid}, {spec.build} build, strategy {spec.strategy}, pool {spec.pool}")
        local.wait_ready(workers)
        say("[lab] workers ready; running the producer")

        # producer, in the foreground
        penv = {**local.env, "RESULTS_DIR": str(results), "RUN_ID": run_id, "TARGET_QUEUES": env["TARGET_QUEUES"]}
        penv["SUMMARY_NOTE"] = summary_note(plan, producer_python, broker_desc)
        proc = subprocess.run([producer_python, "-m", "producer"], env=penv, cwd=paths.REPO)
        return proc.returncode


def summary_note(plan: Plan, producer_python: str, broker_desc: str) -> str:
    lines = [f"broker: {broker_desc}"]
    others = [q for q in plan.skipped if not (plan.mode == "quick" and q.startswith("nogil"))]
    if plan.mode == "quick":
        lines.append(
            "nogil skipped: it needs the free-threaded CPython 3.14 build (`scripts/lab setup`, then `scripts/lab run`)"
        )
    if others:
        lines.append("skipped: " + ", ".join(others))
    return "\n".join(lines)


def down(env: Mapping[str, str], say=print) -> int:
    """Stop whatever crashed runs left: recorded pids first, then the lab's orphaned processes.

    A run whose `scripts/lab` is still alive is not touched (stop it with Ctrl-C); orphans are
    marked processes of runs nobody owns any more (procs.orphaned_runs), e.g. the task processes
    of a worker that was killed, re-parented to init.
    """
    run_dir = paths.cache_root(env) / "run"
    found = 0
    for path in sorted(run_dir.glob("*.json")) if run_dir.exists() else []:
        data = json.loads(path.read_text())
        owner = data.get("owner") or {}
        if owner.get("pid") and procs.alive(owner["pid"], owner.get("started")):
            say(f"[lab] down: run {data['run_id']} is still running (scripts/lab pid {owner['pid']}): not touched")
            continue
        for item in data.get("started", []):
            p = procs.Started(**item)
            how = procs.stop(p, grace=5.0)
            if how != "already gone":
                found += 1
            say(f"[lab] down: {p.name} (pid {p.pid}) of run {data['run_id']}: {how}")
        shutil.rmtree(data.get("work", ""), ignore_errors=True)
        path.unlink()
    for run_id, pids in procs.orphaned_runs().items():
        what = ", ".join(f"{procs.name(pid)} {pid}" for pid in pids)
        say(f"[lab] down: run {run_id}: {len(pids)} orphaned lab process(es): {what}")
        found += len(procs.sweep(run_id))
    say(f"[lab] down: {'nothing left running' if not found else f'stopped {found} process(es)'}")
    return 0


def main(mode: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)

    def parse():
        if mode == "down":
            words = _parser("down").parse_intermixed_args(list(args)).words
            if words:
                raise UsageError(f"down takes no arguments, got {' '.join(words)}")
            return None
        return parse_overrides(args, mode)

    def act(overrides) -> int:
        if mode == "down":
            return down(env)
        return run(make_plan(mode, overrides, env))

    return runner.command(f"lab {mode}", parse, act)
