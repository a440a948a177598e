#!/usr/bin/env python3
"""The free-threaded payoff (issue 14): N concurrent tasks on Celery's threads pool, GIL build against 3.14t.

    bench/pools.py [--builds gil,nogil] [--strategy interrupt|deadline] [--concurrency 2,4] [--quick] [--out DIR]
    bench/run pools [options]          # the same

Host side, standard library only (like scripts/lab): scripts/labctl/runner.py's LocalRun owns the
broker, the workers and their teardown (by pid); the workers (`celery -A app.experiments.bench_worker`, the
lab's worker plus the task `bench.payoff`) and the sender (the producer's, `python -m producer.send batch`)
run on the lab's 3.14 venvs, the free-threaded one with PYTHON_GIL=0.

Per build, one cell after the other (never two at once: it measures throughput), each a fresh
worker on the queue `bench.<build>.<pool>[.n<N>].<strategy>` (outside the lab's queue grammar:
the worker checks no pool against it):

- solo + `process` (the article's baseline: timeout-decorator's process per call), solo + the
  strategy, then for each N (default: cores and 2 x cores) threads and prefork with --concurrency=N;
- each cell: N small warm-up tasks, idle pings, then --tasks tasks sent at once. A task is the
  lab's DuckDB query under the strategy (deadline --timeout from the task's start; every other
  task sized to run --long-factor timeouts, so it hits the deadline, the others --short-factor,
  so they finish in time) and then a Python step (DuckDB result rows turned into dicts and folded,
  --step-seconds long on its own). Both sizes are measured first on the build's interpreter
  (app/measure/calibrate.py for the query, the step timed the same way), never fixed;
- measured: tasks/s (tasks over first start to last end, from the tasks' own monotonic times),
  overshoot p50/p99 (control back minus the deadline, of the timed-out calls), the most tasks
  running at once, and what is left once the batch is back: processes below the worker that were
  not there before (forkserver and resource tracker counted apart), the worker's threads, and the
  CPU its whole tree burns in the --settle window after the last task;
- liveness: while the batch runs, the sender pings the worker every --ping-interval
  (`app.control.ping(destination=[node])`): reply latency p50/max under load against idle.

The in-process cells keep one DuckDB connection per thread (--connection reused, CONNECTION=reused;
each opened one at a time by app/experiments/bench_worker.py): `duckdb.connect()` from two threads at once
aborts 3.14t with PYTHON_GIL=0 (DuckDB 2.0.0's cp314t wheel: "Critical nanobind error" or a
segfault in _duckdb, seen here in a threads-pool worker and in a two-thread loop of connect /
query / close without the lab's code). `--connection per-call` runs the article's connection per
call; a worker that dies is reported with its exit and log tail, and its cell runs once more.
`--gc off` runs the workers without the cyclic GC: on 3.14t the collector stops every thread and
walks the whole heap, and the step allocates a dict per row (what that costs the threads pool).

Ratios are to solo + `process` of the same build in the same run (tasks/s and overshoot p99);
the target line compares the threads pool at N = cores with solo under the same strategy.
Output: the table on stdout, then --out (default results/bench-pools-<timestamp>/): pools.json,
pools.md, logs/ (every worker's and sender's log).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

if __spec__ is None:  # run as `python bench/pools.py`: become `python -m bench.pools`
    _launch = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "labctl", "launch.py")
    os.execv(sys.executable, [sys.executable, _launch, "bench.pools", *sys.argv[1:]])

from app.kernel import axes, procfs, results_io, tables  # standard library only
from app.kernel.stats import percentile
from labctl import paths, procs, runner
from labctl.parsing import Parser
from labctl.runner import UsageError
from labctl.venvs import host_venv

REPO = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1
PROG = "bench/pools.py"
APP_MODULE = "app.experiments.bench_worker"
TASK = "bench.payoff"  # APP_MODULE's task (TASK_NAME there), sent by `python -m producer.send batch`
BASELINE = "process"  # the article's strategy, solo pool: every ratio divides by it
STRATEGIES = ("interrupt", "deadline")  # in-process stops that work in any thread
POOLS = ("solo", "threads", "prefork", "gevent")
DEFAULT_POOLS = ("solo", "threads", "prefork")
TARGET_RATIO = 1.8  # 3.14t, threads pool at N = cores, against solo
TARGET_P99_MS = 10.0  # every timeout honoured: overshoot p99 under this (on an idle machine)
HELPERS = ("forkserver", "resource_tracker")


# --- arguments ------------------------------------------------------------------------------------


def _number(kind: type, lo: float, hi: float, unit: str = ""):
    what = f"{'an integer' if kind is int else 'a number'} from {lo:g} to {hi:g}{unit}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
        return value

    parse.expects = what
    return parse


def _choices(allowed: tuple[str, ...]):
    what = f"a comma-separated list of {', '.join(allowed)}, each at most once"

    def parse(text: str):
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items or any(x not in allowed for x in items) or len(set(items)) != len(items):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
        return tuple(items)

    parse.expects = what
    return parse


def _concurrency(text: str):
    what = "a comma-separated list of integers from 1 to 64, each at most once"
    try:
        items = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        items = []
    if not items or any(not 1 <= n <= 64 for n in items) or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
    return tuple(items)


_concurrency.expects = "a comma-separated list of integers from 1 to 64"


def _python(text: str):
    build, sep, path = text.partition("=")
    if not sep or build not in axes.BUILDS or not os.access(path, os.X_OK) or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: expected {_python.expects}")
    return build, path


_python.expects = "BUILD=PATH, BUILD gil or nogil, PATH an executable python"


def parse_args(argv):
    p = Parser(prog=PROG, error_type=UsageError, description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)

    def add(flag, type_=None, **kw):
        if type_ is not None:
            kw["type"] = type_
            kw["expects"] = type_.expects
        p.add_argument(flag, **kw)

    add("--builds", _choices(axes.BUILDS), default=axes.BUILDS, help="builds to measure (default gil,nogil)")
    add("--pools", _choices(POOLS), default=None,
        help="pools beside the baseline, solo+process (default solo,threads,prefork; gevent where it installs)")
    p.add_argument("--strategy", choices=STRATEGIES, default="interrupt", expects="interrupt or deadline",
                   help="the in-process timeout of every cell but the baseline (default interrupt)")
    p.add_argument("--connection", choices=("reused", "per-call"), default="reused", expects="reused or per-call",
                   help="the in-process cells' DuckDB connection (CONNECTION): reused, one per thread kept open "
                        "(default; opened one at a time: concurrent duckdb.connect aborts 3.14t without the GIL), "
                        "or per-call, the article's (the baseline, solo+process, is always per-call)")
    p.add_argument("--gc", choices=("on", "off"), default="on", expects="on or off",
                   help="the workers' cyclic garbage collector (default on; off: BENCH_GC=off, to see what the "
                        "collector costs the threads pool on 3.14t)")
    add("--concurrency", _concurrency, default=None,
        help=f"N of the threads and prefork pools (default {CORES},{2 * CORES}: cores and 2 x cores)")
    add("--tasks", _number(int, 2, 1000), default=None, help=f"tasks per cell (default {8 * CORES}: 8 x cores)")
    add("--timeout", _number(float, 0.05, 10, " seconds"), default=None, help="the deadline, seconds (default 0.3)")
    add("--step-seconds", _number(float, 0.01, 10, " seconds"), default=None,
        help="the Python step's length on its own, seconds (default 0.3: measured rows of it)")
    add("--long-factor", _number(float, 1.5, 100), default=3.0,
        help="how long the query of every other task would run, in timeouts (default 3: it hits the deadline)")
    add("--short-factor", _number(float, 0.01, 0.8), default=0.2,
        help="how long the other tasks' query runs, in timeouts (default 0.2: in time)")
    add("--settle", _number(float, 0.1, 10, " seconds"), default=1.0,
        help="window after the batch for the leftovers' CPU, seconds (default 1)")
    add("--ping-interval", _number(float, 0.02, 5, " seconds"), default=0.1, help="seconds between pings (0.1)")
    p.add_argument("--broker", choices=("auto", "rabbitmq", "filesystem"), default=None,
                   expects="auto, rabbitmq or filesystem", help="the broker the run starts (default LAB_BROKER or auto)")
    add("--python", _python, action="append", default=[], metavar="BUILD=PATH",
        help="the interpreter of a build (default: the lab venvs of scripts/lab setup)")
    p.add_argument("--out", default=None, expects="a folder",
                   help="output folder (default results/bench-pools-<timestamp>/)")
    p.add_argument("--quick", action="store_true",
                   help="N=2, 4 tasks per cell, shorter calls, one build (the first available): the test's run")
    a = p.parse_args(argv)
    quick = a.quick
    a.pools = a.pools or DEFAULT_POOLS
    a.concurrency = a.concurrency or ((2,) if quick else (CORES, 2 * CORES))
    a.tasks = a.tasks or (4 if quick else 8 * CORES)
    a.timeout = a.timeout or (0.2 if quick else 0.3)
    a.step_seconds = a.step_seconds or (0.1 if quick else 0.3)
    a.pythons = dict(a.python)
    if a.out is not None:
        out = Path(a.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {a.out!r}: expected a folder (it is a file)")
    return a


# --- interpreters ---------------------------------------------------------------------------------


def interpreters(a, env, say) -> tuple[dict[str, str], list[str]]:
    """build -> python for the builds asked for, and the notes on missing ones (one line each)."""
    version = env.get("PYTHON_VERSION") or paths.DEFAULT_PYTHON_VERSION
    pythons, notes = {}, []
    for build in a.builds:
        if build in a.pythons:
            pythons[build] = a.pythons[build]
            continue
        python = paths.venv_dir(version, build, env) / "bin" / "python"
        if python.exists():
            pythons[build] = str(python)
        elif build == "gil":
            host = host_venv(env, say)
            pythons[build] = str(host)
            notes.append(f"no gil CPython {version} venv at {python} (scripts/lab setup): this machine's "
                         f"python3 venv {host} stands in for the GIL build")
        else:
            notes.append(f"no nogil CPython {version} venv at {python} (scripts/lab setup): 3.14t not measured")
    if a.quick and pythons:
        first = next(iter(pythons))
        pythons = {first: pythons[first]}
    return pythons, notes


# --- the worker's tree, from /proc ----------------------------------------------------------------


def tree(root: int) -> list[int]:
    return [root] + procfs.descendants(root)


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """On-CPU nanoseconds of each thread of `pid` (schedstat), by tid; {} once it is gone."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


BUSY_NS = 2_000_000  # a thread that ran more than 2 ms in the settle window was still working


def threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    for helper in HELPERS:
        if helper.encode() in cmd:
            return helper
    return "process"


def snapshot(root: int) -> dict:
    pids = tree(root)
    live = [p for p in pids if procs.state(p) not in (None, "Z")]
    return {"pids": {p: procs.start_time(p) for p in live}, "zombies": [p for p in pids if procs.state(p) == "Z"],
            "threads": sum(threads_of(p) for p in live),
            "cpu_ns": {f"{p}/{tid}": ns for p in live for tid, ns in thread_cpu_ns(p).items()}}


def leftovers(root: int, before: dict, settle: float) -> dict:
    """After the batch: what is below the worker that was not before it, and what the tree burns in `settle` s."""
    first = snapshot(root)
    time.sleep(settle)
    last = snapshot(root)
    new = [p for p, st in last["pids"].items() if p != root and before["pids"].get(p) != st]
    roles = {p: role(p) for p in new}
    spent = {key: ns - first["cpu_ns"].get(key, 0) for key, ns in last["cpu_ns"].items()}
    return {
        "processes": sum(1 for r in roles.values() if r == "process"),
        "helpers": sum(1 for r in roles.values() if r in HELPERS),
        "zombies": len(last["zombies"]),
        "threads_before": before["threads"],  # every thread of the tree when the worker was ready
        "threads_after": last["threads"],  # and after the batch and the settle window
        "threads_busy": sum(1 for ns in spent.values() if ns > BUSY_NS),  # still burning CPU in the window
        "cpu_in_settle_s": round(sum(max(0, ns) for ns in spent.values()) / 1e9, 4),
        "settle_s": settle,
        "new": [{"pid": p, "role": roles[p]} for p in new],
    }


# --- one cell -------------------------------------------------------------------------------------


def queue_name(build: str, pool: str, strategy: str, n: int | None) -> str:
    return ".".join(x for x in ("bench", build, pool, f"n{n}" if n else "", strategy) if x)


def task_list(a, sizes: dict) -> list[dict]:
    """Every other task's query hits the deadline (index 0, 2, ...), the rest finish in time."""
    return [{"index": i, "rows": sizes["long_rows"] if i % 2 == 0 else sizes["short_rows"],
             "step_rows": sizes["step_rows"]} for i in range(a.tasks)]


def helper(run: runner.LocalRun, python: str, name: str, argv: list[str], env: dict, timeout: float,
           watch: procs.Started | None = None) -> dict:
    """`python -m <argv>` in the run: the result line it printed (runner.LocalRun.result; `watch`: the worker it
    talks to)."""
    p = run.spawn(name, [python, "-m", *argv], env, log=name.replace(" ", "-"))
    return run.result(p, timeout, watch)


def run_cell(run, a, build: str, python: str, pool: str, strategy: str, n: int | None, sizes: dict,
             build_env: dict, say, attempt: int = 1) -> dict:
    queue = queue_name(build, pool, strategy, n)
    name = queue if attempt == 1 else f"{queue}-{attempt}"  # a retry writes logs of its own
    spec = runner.WorkerSpec(queue, build, strategy, pool, name=name, app=APP_MODULE, concurrency=n or 1)
    connection = "per-call" if axes.STRATEGIES[strategy].starts_processes else a.connection
    cell = {"build": build, "pool": pool, "strategy": strategy, "concurrency": n or 1, "queue": queue,
            "connection": connection, "attempt": attempt, "load_avg_at_start": os.getloadavg()}
    worker_env = {**build_env, "CONNECTION": connection}  # the worker's only: the sender parses no strategy
    missing = runner.missing_modules(python, spec.needs)
    if missing:
        cell["skipped"] = "; ".join(missing.values())
        say(f"[bench] {queue}: skipped: {cell['skipped']}")
        return cell
    worker = run.start_worker(spec, python, worker_env, name=f"worker {name}")
    tasks = task_list(a, sizes)
    expected = sum(sizes["long_seconds"] if t["rows"] == sizes["long_rows"] else sizes["short_seconds"]
                   for t in tasks) + len(tasks) * a.step_seconds
    wait = 3 * expected + 60  # solo with the process strategy, on a busy machine
    try:
        run.wait_ready([worker])
        before = snapshot(worker.pid)
        params = {"queue": queue, "task": TASK, "node": f"{spec.worker_name}@{run.hostname}", "tasks": tasks,
                  "warmup": n or 1, "timeout": a.timeout, "run_id": run.run_id, "wait": wait, "idle_pings": 10,
                  "ping_interval": a.ping_interval, "ping_timeout": 5.0}
        sent = time.monotonic()
        data = helper(run, python, f"send {name}", ["producer.send", "batch", json.dumps(params)], build_env,
                      wait + 90, watch=worker)
        cell["leftovers"] = leftovers(worker.pid, before, a.settle)
        cell["seconds"] = round(time.monotonic() - sent, 2)
        cell.update(summarize(data, a))
    except (RuntimeError, TimeoutError) as exc:
        cell["error"] = str(exc)
        say(f"[bench] {queue}: error: {str(exc).splitlines()[0][:200]}")
    finally:
        cell["worker_stop"] = run.stop(worker, grace=5.0)
    if "tasks_per_s" in cell:
        say(f"[bench] {queue}: {cell['tasks_per_s']:.2f} tasks/s, {cell['outcomes']}, overshoot p99 "
            f"{_f(cell['overshoot_ms']['p99'])} ms, at once {cell['max_concurrent']}, ping load p50 "
            f"{_f(cell['ping_ms']['load_p50'])} ms")
    return cell


def max_overlap(records: list[dict]) -> int:
    """The most tasks that were running at the same moment (start/end from the tasks' own clocks)."""
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def _ms(x):
    return None if x is None else round(x * 1000, 2)


def summarize(data: dict, a) -> dict:
    records = data["records"]
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    if data["errors"]:
        outcomes["failed"] = len(data["errors"])
    overs = [r["overshoot"] for r in records if r["outcome"] == "timeout"]
    long_ok = sum(1 for r in records if r["index"] % 2 == 0 and r["outcome"] != "timeout")
    span = (max(r["end"] for r in records) - min(r["start"] for r in records)) if records else None
    first, last = (min(r["start"] for r in records), max(r["end"] for r in records)) if records else (0, 0)
    idle = [s["latency"] for s in data["pings"]["idle"] if s["latency"] is not None]
    load_samples = [s for s in data["pings"]["load"] if first <= s["sent"] <= last]
    load = [s["latency"] for s in load_samples if s["latency"] is not None]
    rec0 = records[0] if records else {}
    return {
        "records": records,
        "errors": data["errors"],
        "warmup": data["warmup"],
        "tasks": len(records),
        "outcomes": outcomes,
        "long_not_timed_out": long_ok,  # a query sized to outlast its deadline that did not time out
        "span_s": None if span is None else round(span, 4),
        "tasks_per_s": None if not span else round(len(records) / span, 4),
        "overshoot_ms": {"p50": _ms(percentile(overs, 0.5)), "p99": _ms(percentile(overs, 0.99)),
                         "max": _ms(percentile(overs, 1.0)), "n": len(overs)},
        "step_ms_p50": _ms(percentile([r["step_seconds"] for r in records], 0.5)),
        "max_concurrent": max_overlap(records),
        "threads_used": len({(r["pid"], r["thread"]) for r in records}),
        "pids_used": len({r["pid"] for r in records}),
        "ping_ms": {"idle_p50": _ms(percentile(idle, 0.5)), "idle_max": _ms(percentile(idle, 1.0)),
                    "load_p50": _ms(percentile(load, 0.5)), "load_max": _ms(percentile(load, 1.0)),
                    "load_n": len(load_samples), "load_missed": sum(1 for s in load_samples if s["latency"] is None)},
        "python": rec0.get("python"), "gil_enabled": rec0.get("gil_enabled"), "pool_seen": rec0.get("pool"),
    }


# --- the report -----------------------------------------------------------------------------------


def _f(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(value, base) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def cell_label(c: dict) -> str:
    return c["pool"] + ("" if c["pool"] == "solo" else f" N={c['concurrency']}")


def strategy_label(c: dict) -> str:
    return c["strategy"] + ("" if c.get("connection", "per-call") == "per-call" else f" ({c['connection']})")


def baseline_of(result: dict, build: str) -> dict:
    return next((c for c in result["cells"] if c["build"] == build and c["pool"] == "solo"
                 and c["strategy"] == BASELINE and "tasks_per_s" in c), {})


def solo_of(result: dict, build: str, strategy: str) -> dict:
    return next((c for c in result["cells"] if c["build"] == build and c["pool"] == "solo"
                 and c["strategy"] == strategy and "tasks_per_s" in c), {})


HEADERS = ["build", "pool", "strategy", "tasks: timeout/ok/other", "at once", "tasks/s", "x solo+process",
           "x solo", "overshoot p50 / p99 ms", "p99 x solo+process", "left: procs (helpers) / threads ready->after (busy)",
           "CPU after batch", "ping idle p50/max ms", "ping load p50/max ms", "load avg"]


def rows(result: dict) -> list[list[str]]:
    out = []
    for c in result["cells"]:
        b = result["builds"].get(c["build"], {})
        label = f"{c['build']} ({b.get('python', '?')}, GIL {'on' if b.get('gil_enabled') else 'off'})"
        if "tasks_per_s" not in c:
            out.append([label, cell_label(c), strategy_label(c), c.get("skipped") or c.get("error", "?")[:60]]
                       + ["-"] * (len(HEADERS) - 4))
            continue
        base, solo = baseline_of(result, c["build"]), solo_of(result, c["build"], c["strategy"])
        o, left, ping = c["outcomes"], c["leftovers"], c["ping_ms"]
        other = sum(v for k, v in o.items() if k not in ("timeout", "ok"))
        out.append([
            label, cell_label(c), strategy_label(c), f"{o.get('timeout', 0)}/{o.get('ok', 0)}/{other}",
            str(c["max_concurrent"]), f"{c['tasks_per_s']:.2f}", _ratio(c["tasks_per_s"], base.get("tasks_per_s")),
            _ratio(c["tasks_per_s"], solo.get("tasks_per_s")),
            f"{_f(c['overshoot_ms']['p50'])} / {_f(c['overshoot_ms']['p99'])}",
            _ratio(c["overshoot_ms"]["p99"], (base.get("overshoot_ms") or {}).get("p99")),
            f"{left['processes']} ({left['helpers']}) / {left['threads_before']}->{left['threads_after']} "
            f"({left['threads_busy']})",
            f"{left['cpu_in_settle_s']:.3f} s", f"{_f(ping['idle_p50'])}/{_f(ping['idle_max'])}",
            f"{_f(ping['load_p50'])}/{_f(ping['load_max'])}", f"{c['load_avg_at_start'][0]:.2f}",
        ])
    return out


def targets(result: dict, a) -> list[str]:
    """The issue's targets as numbers, met or missed (never a test assertion)."""
    lines = []
    n = CORES if CORES in a.concurrency else a.concurrency[0]
    for build in result["builds"]:
        cell = next((c for c in result["cells"] if c["build"] == build and c["pool"] == "threads"
                     and c["concurrency"] == n and "tasks_per_s" in c), None)
        solo = solo_of(result, build, a.strategy)
        if cell is None or not solo:
            broken = next((c for c in result["cells"] if c["build"] == build and c.get("error")
                           and c["pool"] in ("threads", "solo")), None)
            why = f" ({broken['queue']}: {broken['error'].splitlines()[0][:160]})" if broken else ""
            lines.append(f"{build}: threads N={n} or solo+{a.strategy} not measured: no target line{why}")
            continue
        ratio = cell["tasks_per_s"] / solo["tasks_per_s"]
        # the load average when the two cells started (other processes on the machine share its cores)
        load = max(c.get("load_avg_at_start", result["machine"]["load_avg_at_start"])[0] for c in (cell, solo))
        idle = load < 0.5
        p99 = cell["overshoot_ms"]["p99"]
        honoured = (cell["long_not_timed_out"] == 0 and not cell["errors"]
                    and cell["outcomes"].get("error", 0) == 0 and p99 is not None and p99 < TARGET_P99_MS)
        base = baseline_of(result, build)
        vs_base = f", {_ratio(cell['tasks_per_s'], base.get('tasks_per_s'))} solo+process" if base else ""
        if build == "nogil":
            met = ratio >= TARGET_RATIO and honoured
            lines.append(
                f"target (3.14t, PYTHON_GIL=0): threads N={n} >= {TARGET_RATIO}x the tasks/s of solo+{a.strategy} "
                f"with every timeout honoured (overshoot p99 < {TARGET_P99_MS:g} ms): "
                f"{'MET' if met else 'MISSED'} ({ratio:.2f}x{vs_base}; overshoot p99 {_f(p99)} ms; "
                f"{cell['long_not_timed_out']} long query(ies) not timed out, {len(cell['errors'])} failed)"
                + ("" if idle else f" - not an idle machine: load average up to {load:.2f} when the two cells started"))
        else:
            lines.append(f"beside it ({build} build): threads N={n} at {ratio:.2f}x the tasks/s of solo+{a.strategy}"
                         f"{vs_base}; overshoot p99 {_f(p99)} ms"
                         f" ({'every timeout honoured' if honoured else 'not every timeout honoured'})")
    for build in result["builds"]:
        for c in result["cells"]:
            if c["build"] == build and c["pool"] == "threads" and "ping_ms" in c:
                p = c["ping_ms"]
                lines.append(f"liveness ({build}, threads N={c['concurrency']}): ping reply p50/max "
                             f"{_f(p['load_p50'])}/{_f(p['load_max'])} ms under load ({p['load_n']} pings, "
                             f"{p['load_missed']} unanswered) against {_f(p['idle_p50'])}/{_f(p['idle_max'])} ms idle")
    return lines


# --- the run ----------------------------------------------------------------------------------------


def cells_of(a) -> list[tuple[str, str, int | None]]:
    """(pool, strategy, N) of one build, in order: the baseline first."""
    out = [("solo", BASELINE, None)]
    if "solo" in a.pools:
        out.append(("solo", a.strategy, None))
    for n in a.concurrency:
        for pool in a.pools:
            if pool != "solo":
                out.append((pool, a.strategy, n))
    return out


def sizes_for(a, cal: dict) -> dict:
    rate, step_rate = cal["calibration"]["rows_per_second"], cal["step"]["rows_per_second"]
    lo, hi = 1_000, 10**11
    long_rows = int(min(hi, max(lo, rate * a.timeout * a.long_factor)))
    short_rows = int(min(hi, max(lo, rate * a.timeout * a.short_factor)))
    return {"long_rows": long_rows, "short_rows": short_rows, "step_rows": max(1, int(step_rate * a.step_seconds)),
            "long_seconds": round(long_rows / rate, 4), "short_seconds": round(short_rows / rate, 4),
            "step_seconds": a.step_seconds}


def execute(a, env, say) -> dict:
    pythons, notes = interpreters(a, env, say)
    for note in notes:
        say(f"[bench] {note}")
    if not pythons:
        raise UsageError("no interpreter to measure: run `scripts/lab setup` (or give --python BUILD=PATH)")
    run_id = "bench-pools-" + time.strftime("%Y%m%d-%H%M%S")
    out = Path(a.out) if a.out else REPO / "results" / run_id
    out = out.resolve()
    result = {
        "run_id": run_id,
        "command": " ".join([PROG, *a.argv]),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpus": CORES, "platform": platform.platform(), "load_avg_at_start": os.getloadavg()},
        "settings": {k: v for k, v in vars(a).items() if k not in ("python", "pythons", "argv")},
        "notes": notes, "targets": {"ratio": TARGET_RATIO, "overshoot_p99_ms": TARGET_P99_MS},
        "builds": {}, "cells": [],
    }
    started = time.monotonic()
    broker = a.broker or env.get("LAB_BROKER") or "auto"
    with runner.LocalRun(run_id, env, logs=out / "logs", broker=broker, broker_url=env.get("BROKER_URL") or None,
                         drop=("PYTEST_*", "QUEUE", "WORKER_NAME", "TIMEOUT_STRATEGY", "START_METHOD",
                               "CALIBRATION_DIR", "DUCKDB_THREADS", "CONNECTION", "WORKLOAD", "BENCH_GC"),
                         grace=5.0, say=say, tag="[bench]") as run:
        _, result["broker"] = run.start_broker()
        for build, python in pythons.items():
            folder = run.work / "calibration" / build
            # PYTHONFAULTHANDLER: a worker that crashes (the free-threaded build, DuckDB without the GIL) says where
            build_env = {"CALIBRATION_DIR": str(folder), "DUCKDB_THREADS": "1", "PYTHONFAULTHANDLER": "1",
                         "BENCH_GC": a.gc}  # the step is sized under the GC setting it runs with
            if build == "nogil":
                build_env["PYTHON_GIL"] = "0"
            cal = helper(run, python, f"calibrate {build}",
                         [APP_MODULE, "calibrate", json.dumps({"folder": str(folder)})], build_env, 120)
            sizes = sizes_for(a, cal)
            result["builds"][build] = {"python_path": python, "python": cal["python"], "build": cal["build"],
                                       "gil_enabled": cal["gil_enabled"], "duckdb": cal.get("duckdb"),
                                       "calibration": cal["calibration"], "step_calibration": cal["step"],
                                       "sizes": sizes}
            say(f"[bench] {build}: CPython {cal['python']}, GIL {'on' if cal['gil_enabled'] else 'off'}; query "
                f"{cal['calibration']['rows_per_second'] / 1e6:.0f}M rows/s -> {sizes['long_rows']:,} rows "
                f"({sizes['long_seconds']:.2f} s, hits the {a.timeout:g} s deadline) / {sizes['short_rows']:,} "
                f"({sizes['short_seconds']:.2f} s); Python step {cal['step']['rows_per_second'] / 1e3:.0f}k rows/s -> "
                f"{sizes['step_rows']:,} rows ({a.step_seconds:g} s)")
            for pool, strategy, n in cells_of(a):
                cell = run_cell(run, a, build, python, pool, strategy, n, sizes, build_env, say)
                if cell.get("error"):  # once more, and say so (a worker that crashed is a finding: kept)
                    say(f"[bench] {cell['queue']}: running it once more")
                    again = run_cell(run, a, build, python, pool, strategy, n, sizes, build_env, say, attempt=2)
                    again["first_attempt_error"] = cell["error"]
                    cell = again
                result["cells"].append(cell)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    result["left_running"] = procs.marked(run_id)
    result["out"] = str(out)
    return result


def report(result: dict, a) -> str:
    m = result["machine"]
    head = (f"free-threaded payoff: {result['generated']}, {m['cpus']} cores, {m['platform']}, load average "
            f"{m['load_avg_at_start'][0]:.2f} at the start, {m['load_avg_at_end'][0]:.2f} at the end; broker "
            f"{result.get('broker')}; {a.tasks} tasks per cell (every other one's query sized to hit the "
            f"{a.timeout:g} s deadline), Python step {a.step_seconds:g} s, GC {a.gc}; DuckDB connection {a.connection} "
            f"(solo+process: per-call); {result['seconds']:.0f} s")
    retried = [f"{c['queue']}: the first attempt failed: {c['first_attempt_error'].splitlines()[0][:240]}"
               for c in result["cells"] if c.get("first_attempt_error")]
    lines = [head, *result["notes"], "", tables.render(HEADERS, rows(result)), "", *targets(result, a), *retried]
    return "\n".join(lines)


def main(argv=None, env=None, say=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if env is None else env)
    say = say or (lambda m: print(m, flush=True))

    def parse():
        a = parse_args(argv)
        a.argv = argv
        return a

    return runner.command(PROG, parse, lambda a: _finish(a, execute(a, env, say), say))


def _finish(a, result: dict, say) -> int:
    """Write pools.json and pools.md of the run; its exit status (1 when a cell failed)."""
    text = report(result, a)
    out = Path(result["out"])
    results_io.write_json(out / "pools.json", result, indent=1, sort_keys=True)
    results_io.write_text(out / "pools.md", "```\n" + text + "\n```\n")
    say("")
    say(text)
    say(f"\n[bench] {out / 'pools.json'} and pools.md written")
    failed = [c["queue"] for c in result["cells"] if c.get("error")]
    if failed:
        print(f"{PROG}: {len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
