#!/usr/bin/env python3
"""Soak: time out the DuckDB query 1000 times per strategy and watch the caller's resources.

    python3 bench/soak.py                                  # 1000 iterations each, the defaults below
    python3 bench/soak.py --iterations 50 --json out.json  # the short version the tests run

Each strategy runs in a fresh process of its own, standing in for one worker: it calls
`app.strategies.run` in a loop (plus `app.cleanup.reap_tasks` for `process+cleanup`, as the
task does) and after every iteration samples its own process tree and resources with
`app.measure.probe`: processes below it (live and zombie), open fds, threads, RSS. No Celery, no broker.

What a Celery worker adds is its SIGTERM handler: task processes forked from the worker inherit
it, and it only sets a shutdown flag, so timeout-decorator's SIGTERM does not stop them. By
default (`--sigterm celery`) the soak installs Celery's own worker handler the same way, so the
baseline leaks as it does in a worker; `--sigterm default` shows the plain interpreter.

Reported per strategy: how the calls ended, seconds per iteration, first/last/max of each
measure, and its least-squares slope per 100 iterations after the first 10 % (warm-up). A clean
strategy's slopes are ~0. The parent needs only the standard library; the children run on
`--python` (default: this interpreter; `gil`/`nogil`: the lab's CPython 3.14 builds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __spec__ is None:  # run as `python bench/soak.py`: become `python -m bench.soak`
    _launch = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "labctl", "launch.py")
    os.execv(sys.executable, [sys.executable, _launch, "bench.soak", *sys.argv[1:]])

from app.kernel import axes, results_io, tables  # standard library only

from . import children

REPO = Path(__file__).resolve().parents[1]

# the default run: the baseline first, then the clean ones; --strategies takes any that runs
# outside a Celery worker
STRATEGIES = ("process", "process+cleanup", "interrupt", "deadline")
RUNNABLE = tuple(s.name for s in axes.STRATEGY_LIST if s.in_plain_process)
MEASURES = ("processes", "fds", "threads", "rss_mb")
# Defaults sized so 1000 iterations of a strategy take a few minutes on 2 cores: the query would
# run QUERY_SECONDS (10 timeouts) when nobody stops it, so every call is cut short, and a leaked
# task process of the baseline is done within a few iterations instead of piling up for good.
# The rows come from the query's measured speed on the children's interpreter (app/measure/calibrate.py).
ITERATIONS = 1000
TIMEOUT = 0.1
QUERY_SECONDS = 1.0
GRACE = 0.1
WARMUP = 0.1


# --- the child: one strategy, one process ------------------------------------------------------


def _install_celery_sigterm() -> None:
    """Celery's worker SIGTERM handler (warm shutdown), installed as `celery worker` does."""
    from types import SimpleNamespace

    from celery.apps.worker import install_worker_term_handler

    install_worker_term_handler(SimpleNamespace(hostname="soak@localhost"))


def child(args: argparse.Namespace) -> int:
    import multiprocessing

    if args.start_method:
        multiprocessing.set_start_method(args.start_method, force=True)
    if args.sigterm == "celery":
        _install_celery_sigterm()
    from app.measure import calibrate, probe
    from app.kernel import interpreter
    from app import strategies
    from app.cleanup import reap_tasks

    runtime = interpreter.describe()
    calibration = calibrate.cached(1)
    rows = args.rows or calibration.rows_for(args.query_seconds)
    outcomes: dict[str, int] = {}
    samples = []
    start = time.monotonic()
    for i in range(1, args.iterations + 1):
        outcome = strategies.run(args.strategy, rows, args.timeout, 1)
        outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
        if axes.STRATEGIES[args.strategy].cleans_up and outcome.outcome == "timeout":
            reap_tasks(grace=args.grace)
        if args.pause:
            time.sleep(args.pause)
        snap = probe.snapshot()
        res = probe.Resources.of()
        samples.append([i, snap.children, len(snap.tasks), snap.zombies, res.open_fds, res.threads, res.rss_bytes])
        if i % max(1, args.iterations // 10) == 0:
            print(f"soak: {args.strategy}: {i}/{args.iterations} after {time.monotonic() - start:.0f}s, "
                  f"{snap.children} processes, {res.open_fds} fds, {res.threads} threads, "
                  f"{res.rss_bytes / 2**20:.0f} MB", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - start
    results_io.write_json(
        args.out, {"strategy": args.strategy, "runtime": runtime, "outcomes": outcomes, "seconds": elapsed,
                   "rows": rows, "expected_seconds": round(calibration.seconds_for(rows), 3),
                   "calibration": calibration.as_dict(),
                   "columns": ["iteration", "processes", "tasks", "zombies", "fds", "threads", "rss_bytes"],
                   "samples": samples}, indent=None)
    return 0


# --- the parent: run the children, compute the slopes ---------------------------------------------


def slope_per_100(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs, times 100 (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return 100.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def summarise(data: dict, warmup: float = WARMUP) -> dict:
    rows = data["samples"]
    cols = data["columns"]
    series = {
        "processes": [r[cols.index("processes")] for r in rows],
        "fds": [r[cols.index("fds")] for r in rows],
        "threads": [r[cols.index("threads")] for r in rows],
        "rss_mb": [r[cols.index("rss_bytes")] / 2**20 for r in rows],
    }
    its = [r[0] for r in rows]
    skip = int(len(rows) * warmup)
    out = {
        "strategy": data["strategy"],
        "iterations": len(rows),
        "outcomes": data["outcomes"],
        "seconds_per_iteration": round(data["seconds"] / max(1, len(rows)), 4),
        "runtime": data["runtime"],
        "rows": data["rows"],
        "expected_seconds": data["expected_seconds"],
        "calibration": data["calibration"],
        "max_zombies": max((r[cols.index("zombies")] for r in rows), default=0),
    }
    for name, ys in series.items():
        out[name] = {
            "first": round(ys[0], 2) if ys else None,
            "last": round(ys[-1], 2) if ys else None,
            "max": round(max(ys), 2) if ys else None,
            "slope_per_100": round(slope_per_100(its[skip:], ys[skip:]), 3),
        }
    return out


def run_child(python: str, strategy: str, args: argparse.Namespace, env: dict, quiet: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        out = Path(tmp) / "samples.json"
        cmd = [*children.module(python, "soak"), "--child", "--strategy", strategy, "--out", str(out),
               "--iterations", str(args.iterations), "--rows", str(args.rows), "--query-seconds", str(args.query_seconds),
               "--timeout", str(args.timeout),
               "--grace", str(args.grace), "--sigterm", args.sigterm, "--pause", str(args.pause)]
        if args.start_method:
            cmd += ["--start-method", args.start_method]
        # stdout: Celery's handler says "worker: Warm shutdown" in every task process it stops;
        # stderr: progress every 10 %, passed on as it comes
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stderr:
            lines.append(line.rstrip())
            if line.startswith("soak: ") and not quiet:
                print(line.rstrip(), flush=True)
        code = proc.wait()
        if code or not out.exists():
            last = ([ln for ln in lines if not ln.startswith("soak: ")] or ["no output"])[-1]
            raise RuntimeError(f"{strategy} on {python} failed (exit {code}): {last}")
        return json.loads(out.read_text())


def table(results: list[dict]) -> str:
    head = ["strategy", "iters", "outcomes", "s/iter", "procs first/last/max", "fds first/last",
            "threads first/last", "RSS MB first/last", "slope/100: procs", "fds", "threads", "RSS MB"]
    lines = []
    for r in results:
        oc = " ".join(f"{k}={v}" for k, v in sorted(r["outcomes"].items()))
        lines.append([
            r["strategy"], str(r["iterations"]), oc, f"{r['seconds_per_iteration']:.3f}",
            f"{r['processes']['first']:g}/{r['processes']['last']:g}/{r['processes']['max']:g}",
            f"{r['fds']['first']:g}/{r['fds']['last']:g}", f"{r['threads']['first']:g}/{r['threads']['last']:g}",
            f"{r['rss_mb']['first']:.1f}/{r['rss_mb']['last']:.1f}",
            f"{r['processes']['slope_per_100']:+.2f}", f"{r['fds']['slope_per_100']:+.2f}",
            f"{r['threads']['slope_per_100']:+.2f}", f"{r['rss_mb']['slope_per_100']:+.2f}",
        ])
    return tables.render(head, lines, markdown=True)


def resolve_python(value: str, env: dict) -> tuple[str, dict]:
    if value in ("gil", "nogil"):
        from labctl import paths

        python = paths.venv_dir(paths.DEFAULT_PYTHON_VERSION, value, env) / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"soak: --python {value}: no interpreter at {python} (run scripts/lab setup)")
        if value == "nogil":
            env = {**env, "PYTHON_GIL": "0"}  # as the lab's nogil workers: keep the GIL off after `import duckdb`
        return str(python), env
    return value, env


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=ITERATIONS)
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma list, default: %(default)s")
    p.add_argument("--rows", type=int, default=0,
                   help="DuckDB rows per query (default 0: calibrated to --query-seconds on the children's interpreter)")
    p.add_argument("--query-seconds", type=float, default=QUERY_SECONDS,
                   help="how long the calibrated query would run if nobody stopped it (default %(default)s)")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds (default %(default)s)")
    p.add_argument("--grace", type=float, default=GRACE, help="cleanup grace, seconds (default %(default)s)")
    p.add_argument("--start-method", choices=("fork", "forkserver", "spawn"), default=None)
    p.add_argument("--sigterm", choices=("celery", "default"), default="celery",
                   help="SIGTERM handler task processes inherit (default: Celery's worker handler)")
    p.add_argument("--pause", type=float, default=0.0, help="seconds to sleep between iterations")
    p.add_argument("--python", default=sys.executable, help="interpreter for the children, or gil / nogil")
    p.add_argument("--json", help="write the summaries (and the command) here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.iterations <= 100_000:
        p.error(f"--iterations {args.iterations}: expected an integer from 1 to 100000")
    if not 0.01 <= args.timeout <= 60:
        p.error(f"--timeout {args.timeout}: expected seconds from 0.01 to 60")
    if not 0 <= args.grace <= 60 or not 0 <= args.pause <= 60:
        p.error("--grace/--pause: expected seconds from 0 to 60")
    if args.rows < 0:
        p.error(f"--rows {args.rows}: expected a positive integer, or 0 for calibrated")
    if not 0.01 <= args.query_seconds <= 3600:
        p.error(f"--query-seconds {args.query_seconds}: expected seconds from 0.01 to 3600")
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = [s for s in names if s not in RUNNABLE]
    if bad or not names:
        p.error(f"--strategies {args.strategies}: expected a comma list of {', '.join(RUNNABLE)}")
    args.strategy_list = names
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.child:
        return child(args)
    python, env = resolve_python(args.python, children.env())
    command = "python3 bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = args.rows or f"calibrated to a {args.query_seconds:g} s query"
    print(f"soak: {args.iterations} iterations per strategy, rows={rows}, timeout={args.timeout}s, "
          f"cleanup grace={args.grace}s, SIGTERM handler: {args.sigterm}, children on {python}", flush=True)
    results = []
    for strategy in args.strategy_list:
        t0 = time.monotonic()
        data = run_child(python, strategy, args, env)
        summary = summarise(data)
        results.append(summary)
        print(f"soak: {strategy}: {time.monotonic() - t0:.0f}s, outcomes {summary['outcomes']}, slopes/100 "
              + " ".join(f"{m}={summary[m]['slope_per_100']:+.2f}" for m in MEASURES), flush=True)
    rt = results[0]["runtime"] if results else {}
    print()
    print(f"CPython {rt.get('python')} {rt.get('build')} build, start method {rt.get('start_method')}, "
          f"duckdb {rt.get('duckdb')}, host {platform.node()} ({os.cpu_count()} CPUs)")
    for r in results:
        cal = r["calibration"]
        print(f"{r['strategy']}: {r['rows']:,} rows, expected {r['expected_seconds']:.2f} s at "
              f"{cal['rows_per_second'] / 1e6:.0f}M rows/s ({cal['source']})")
    print(table(results))
    if args.json:
        kept = {k: v for k, v in vars(args).items() if k not in ("child", "strategy", "out")}
        results_io.write_json(args.json, {"command": command, "args": kept, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
