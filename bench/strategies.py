"""Benchmark every timeout strategy side by side, without Celery.

    python bench/strategies.py [--timeouts 200] [--python gil=PATH --python nogil=PATH] [--json PATH]
    bench/run [options]        # the same, with the lab's gil and nogil venvs picked for you

One process tree: this process starts one child per build (a lab venv's interpreter; `nogil`
children get PYTHON_GIL=0), one after the other. Each child calls `app.strategies` directly, the
way `tasks.leak_demo` does inside a worker, and measures per strategy (and per start method for
the process strategies):

- overshoot p50/p99: seconds from the deadline to getting control back, over N timeouts;
- CPU after deadline: CPU seconds burned, after control came back, by the task processes a call
  left behind (read by a sampler process outside the child's tree every 10 ms, so what a
  process burns in its last <10 ms before exiting is missed) and by the child's other threads
  (DuckDB threads, the watchdog) during a settle window after each call;
- per-call overhead: a query that finishes in time, strategy minus a plain call (no timeout),
  median of interleaved pairs;
- processes left after N timeouts: task processes (running or zombie) under the child after the
  last call and its settle window; they are reaped before the next strategy starts;
- query stopped and control back (`--connection per-call,reused`): for the in-process strategies,
  from the deadline to the query raising and to getting control back, with the call's own
  DuckDB connection (per-call: opened and closed by each call, the article's) and with one kept
  open (reused, variant `<strategy>/reused`, run right after its per-call one); the second table
  puts them side by side, with what the close costs and the ratio of control back.

Like a Celery worker, each child installs Celery's own SIGTERM handler (a warm shutdown that only
sets a flag), so that under `fork` a timed-out task process inherits it and keeps running the
query, as in the article; `--sigterm default` leaves the default handler (the process dies).
`prefork-time-limit` needs Celery's prefork pool and is measured by `scripts/lab run` only.
Every figure is also given as a ratio to the `process` baseline (the build's default start
method) from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path

if __spec__ is None:  # run as `python bench/strategies.py`: become `python -m bench.strategies`
    _launch = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "labctl", "launch.py")
    os.execv(sys.executable, [sys.executable, _launch, "bench.strategies", *sys.argv[1:]])

from app.kernel import axes, procfs, results_io, tables  # standard library only
from app.kernel.settings import CONNECTIONS
from app.kernel.stats import percentile
from labctl.parsing import drop_values

from . import children

REPO = Path(__file__).resolve().parents[1]

# every strategy that runs outside a Celery worker (prefork-time-limit needs Celery's pool)
STRATEGIES = tuple(s.name for s in axes.STRATEGY_LIST if s.in_plain_process)
START_METHODS = axes.START_METHODS
TARGETS = {"overshoot_p99_ms": 10.0, "cpu_after_s": 0.0, "left": 0, "overhead_ms": 1.0}


# --- the sampler: CPU of every descendant of one pid, from outside its tree -----------------------


def process_key(pid: int) -> str | None:
    """`pid:start time`: one process, even after its pid is reused."""
    fields = procfs.stat(pid)
    return None if fields is None else f"{pid}:{fields[procfs.STARTTIME]}"


def sampler(root: int, interval: float) -> int:
    """Until stdin closes: remember the last CPU ns seen per descendant of `root`; print them as JSON."""
    import selectors

    from app.measure.probe import cpu_ns

    last: dict[str, int] = {}
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for pid in procfs.descendants(root):  # not psutil: see there
            key, ns = process_key(pid), cpu_ns(pid)
            if key and ns is not None:
                last[key] = ns
        if sel.select(timeout=interval):
            if not sys.stdin.buffer.read1(4096):
                break
    print(json.dumps(last))
    return 0


# --- one child per build ------------------------------------------------------------------------


def _install_celery_sigterm() -> str:
    """Celery's worker SIGTERM handler (warm shutdown: set a flag, return), as in a worker."""
    try:
        from types import SimpleNamespace

        from celery.apps.worker import install_worker_term_handler

        install_worker_term_handler(SimpleNamespace(hostname="bench"))
        return "celery"
    except Exception as exc:  # noqa: BLE001 - say what happened instead of measuring something else
        raise SystemExit(f"bench: cannot install Celery's SIGTERM handler ({exc}); use --sigterm default")


class Child:
    def __init__(self, args):
        import multiprocessing

        from app.kernel import interpreter
        from app.measure import probe
        from app import strategies
        from app.cleanup import reap_tasks

        self.args = args
        self.mp, self.probe, self.strategies, self.reap = multiprocessing, probe, strategies, reap_tasks
        self.default_start = multiprocessing.get_start_method()
        self.runtime = interpreter.describe()
        self.variants = []  # (strategy, start method, connection); a process strategy's is per-call only
        for strategy in args.strategies:
            if axes.STRATEGIES[strategy].starts_processes:
                self.variants += [(strategy, m, "per-call") for m in args.start_methods]
            else:
                self.variants += [(strategy, None, c) for c in args.connection]

    def use(self, start: str | None) -> None:
        if start:
            self.mp.set_start_method(start, force=True)

    def reap_all(self) -> None:
        self.strategies.close_pools()  # a kept pool's way, before the reaper kills its idle worker
        self.reap(grace=self.args.cleanup_grace)

    def calibrate(self) -> int:
        """Rows of the timed-out query: --rows, else --query-factor timeouts at the query's speed
        measured on this interpreter (app/measure/calibrate.py, as the lab's workers do)."""
        from app.measure import calibrate

        self.calibration = calibrate.cached(1)
        return self.args.rows or self.calibration.rows_for(self.args.timeout * self.args.query_factor)

    def overhead(self) -> dict:
        """Interleaved pairs (plain, strategy) with a query that finishes in time.

        Two figures per strategy: `overhead_ms`, the call's time minus the time its own work took
        (connect, query, close: timed where it ran, in the task process for `process`), and
        `vs_plain_ms`, the call minus the plain call next to it. Both are medians; the second
        carries the whole noise of opening a DuckDB database (tens of ms here), the first not.
        """
        a = self.args
        diffs: dict[str, list[float]] = {self.name(*v): [] for v in self.variants}
        wrapper: dict[str, list[float]] = {self.name(*v): [] for v in self.variants}
        plains: list[float] = []
        bad: dict[str, str] = {}
        for round_ in range(a.ok_calls):
            for strategy, start, connection in self.variants:
                self.use(start)
                name = self.name(strategy, start, connection)

                def plain() -> float:
                    t = time.perf_counter()
                    self.strategies.plain(a.ok_rows)
                    return time.perf_counter() - t

                def wrapped() -> float:
                    out = self.strategies.run(strategy, a.ok_rows, a.ok_timeout, connection=connection)
                    if out.outcome != "ok":
                        bad[name] = f"{out.outcome}: {out.exception_type} {out.exception_message}"
                    else:
                        wrapper[name].append(out.elapsed - out.work)
                    return out.elapsed

                if round_ % 2:
                    w, p = wrapped(), plain()
                else:
                    p, w = plain(), wrapped()
                plains.append(p)
                diffs[name].append(w - p)
        # once, at the end: reaping between rounds would kill the pool pebble-pool keeps (its per-call
        # cost is that of a kept pool); finished calls' zombies are reaped by the next start meanwhile
        self.reap_all()
        out = {}
        for name, values in diffs.items():
            w = _median_ci(wrapper[name])
            v = _median_ci(values)
            out[name] = {
                "overhead_ms": w[0],
                "ci95_ms": w[1],
                "vs_plain_ms": v[0],
                "vs_plain_ci95_ms": v[1],
                "pairs": len(values),
                "error": bad.get(name),
            }
        out["_plain_ms"] = round(statistics.median(plains) * 1000, 3)
        return out

    @staticmethod
    def name(strategy: str, start: str | None, connection: str = "per-call") -> str:
        return (f"{strategy}@{start}" if start else strategy) + ("" if connection == "per-call" else f"/{connection}")

    def timeouts(self, strategy: str, start: str | None, rows: int, connection: str = "per-call") -> dict:
        a, probe = self.args, self.probe
        self.use(start)
        at_return: dict[int, int] = {}
        overshoots, stops, gaps, quiet, outcomes, errors = [], [], [], [], {}, set()
        in_worker = 0.0
        busy_at_end = 0
        t0 = time.monotonic()
        for _ in range(a.timeouts):
            out = self.strategies.run(strategy, rows, a.timeout, connection=connection)
            returned = time.monotonic()
            outcomes[out.outcome] = outcomes.get(out.outcome, 0) + 1
            if out.outcome != "timeout":
                errors.add(f"{out.outcome}: {out.exception_type} {out.exception_message}")
            overshoots.append(out.elapsed - a.timeout)
            if out.stopped is not None:
                stops.append(out.stopped - a.timeout)
                gaps.append(out.elapsed - out.stopped)  # the strategy's clean-up: closing the connection
            snap = probe.snapshot()
            live = [p.pid for p in snap.tasks if not p.zombie]
            for pid in live:
                key = process_key(pid)  # pids wrap around quickly on a busy machine (pid_max 32768)
                if key and key not in at_return:
                    ns = probe.cpu_ns(pid)
                    if ns is not None:
                        at_return[key] = ns
            watch = probe.CpuWatch(live, returned)
            if axes.STRATEGIES[strategy].cleans_up and out.outcome == "timeout":
                self.reap(grace=a.cleanup_grace, tick=watch.sample)
            q = watch.until(returned + a.settle)
            in_worker += q.cpu_in_worker
            busy_at_end += q.busy_at_end
            if q.quiet_after_return is not None:
                quiet.append(out.elapsed - a.timeout + q.quiet_after_return)
        final = probe.snapshot()
        tasks = final.tasks
        left = {
            "tasks": len(tasks),
            "running": sum(1 for p in tasks if not p.zombie),
            "zombies": sum(1 for p in tasks if p.zombie),
            "helpers": len(final.by_role("forkserver")) + len(final.by_role("resource_tracker")),
        }
        seconds = time.monotonic() - t0
        self.reap_all()
        return {
            "strategy": strategy,
            "start_method": start or (self.default_start if axes.STRATEGIES[strategy].starts_processes else None),
            "connection": connection,
            "timeouts": a.timeouts,
            "outcomes": outcomes,
            "errors": sorted(errors)[:3],
            "overshoot_ms": {k: _ms(percentile(overshoots, q)) for k, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
            "stop_overshoot_ms": {k: _ms(percentile(stops, q)) for k, q in (("p50", 0.5), ("p99", 0.99))},
            "back_after_stop_ms": {k: _ms(percentile(gaps, q)) for k, q in (("p50", 0.5), ("p99", 0.99))},
            "quiet_after_deadline_ms": {k: _ms(percentile(quiet, q)) for k, q in (("p50", 0.5), ("p99", 0.99))},
            "busy_after_settle": busy_at_end,  # calls after which something still burned CPU
            "in_worker_cpu_s": round(in_worker, 4),
            "at_return_ns": at_return,  # the parent adds what the sampler saw afterwards
            "left": left,
            "seconds": round(seconds, 1),
        }

    def main(self) -> dict:
        a = self.args
        sigterm = _install_celery_sigterm() if a.sigterm == "celery" else "default"
        rows = self.calibrate()
        say = lambda msg: print(f"[bench {self.runtime['build']}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
        say(f"CPython {self.runtime['python']}, GIL {'on' if self.runtime['gil_enabled'] else 'off'}, "
            f"default start method {self.default_start}; timed-out query: {rows:,} rows, expected "
            f"{self.calibration.seconds_for(rows):.2f} s at {self.calibration.rows_per_second / 1e6:.0f}M rows/s")
        say(f"per-call overhead: {a.ok_calls} pairs x {len(self.variants)} strategies ...")
        overhead = self.overhead()
        results = {}
        for strategy, start, connection in self.variants:
            name = self.name(strategy, start, connection)
            say(f"{name}: {a.timeouts} timeouts of {a.timeout}s ...")
            results[name] = self.timeouts(strategy, start, rows, connection)
            results[name]["overhead"] = overhead[name]
        return {
            "runtime": self.runtime,
            "default_start_method": self.default_start,
            "sigterm": sigterm,
            "rows": rows,
            "expected_seconds": round(self.calibration.seconds_for(rows), 3),
            "calibration": self.calibration.as_dict(),
            "plain_call_ms": overhead["_plain_ms"],
            "variants": results,
        }


def _median_ci(values: list[float]) -> tuple[float | None, list[float] | None]:
    """Median in ms and its ~95% confidence interval from order statistics."""
    if not values:
        return None, None
    values = sorted(values)
    n = len(values)
    lo_k, hi_k = max(0, round(n / 2 - 0.98 * n**0.5)), min(n - 1, round(n / 2 + 0.98 * n**0.5))
    return round(statistics.median(values) * 1000, 3), [round(values[lo_k] * 1000, 3), round(values[hi_k] * 1000, 3)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- the parent: run the children, add the sampler's view, print the table ---------------------------


def run_child(build: str, python: str, args, argv: list[str]) -> dict:
    # PYTHON_GIL=0 on nogil: `import duckdb` turns the GIL back on otherwise
    env = children.env({"PYTHON_GIL": "0"} if build == "nogil" else {})
    data, seen_out = children.measure("bench", build, children.module(python, "strategies", *argv), env,
                                      children.module(python, "strategies", "--sampler"), env)
    seen = json.loads(seen_out or "{}")
    for v in data["variants"].values():
        at_return = v.pop("at_return_ns")
        after_ns = sum(max(0, seen.get(key, ns) - ns) for key, ns in at_return.items())
        v["cpu_after_s"] = round(after_ns / 1e9 + v["in_worker_cpu_s"], 3)
        v["cpu_after_per_timeout_ms"] = round(v["cpu_after_s"] * 1000 / max(1, v["timeouts"]), 2)
        v["leftover_processes_tracked"] = len(at_return)
    data["python_path"] = python
    return data


def _ratio(value, base, floor: float = 0.0) -> str:
    """value / base; `base 0` when the baseline is (at or below `floor`, i.e. about) zero."""
    if value is None or base is None:
        return "-"
    if base <= floor:
        return "=" if value == base else "base~0" if floor else "base 0"
    return f"{value / base:.2f}x"


BASELINE = {"name": ""}  # --baseline; empty: process with the build's default start method


def baseline_name(build: dict) -> str:
    return BASELINE["name"] or f"process@{build['default_start_method']}"


def failed_every_call(v: dict) -> bool:
    """No call timed out or ran to its end: each raised something else (the variant measured nothing)."""
    return not v["outcomes"].get("timeout") and not v["outcomes"].get("ok")


def table(result: dict) -> str:
    headers = ["build", "strategy", "overshoot p50", "overshoot p99", "CPU after deadline / timeout",
               "overhead / call", "vs plain call [95% CI]", "left after N (run/zomb)"]
    rows = []
    for build, data in result["builds"].items():
        variants = data["variants"]
        base = variants.get(baseline_name(data)) or {}
        bo, bov = base.get("overshoot_ms", {}), base.get("overhead") or {}
        for name, v in variants.items():
            if failed_every_call(v):  # nothing below was measured
                rows.append([build, name, "every call failed: " + "; ".join(v["errors"])[:60]] + ["-"] * 5)
                continue
            ov, over = v["overhead"], v["overshoot_ms"]
            vs = "-" if ov["vs_plain_ms"] is None else (
                f"{ov['vs_plain_ms']:+.1f} ms [{ov['vs_plain_ci95_ms'][0]:+.0f}, {ov['vs_plain_ci95_ms'][1]:+.0f}]")
            rows.append([
                build, name,
                f"{_f(over['p50'])} ms ({_ratio(over['p50'], bo.get('p50'))})",
                f"{_f(over['p99'])} ms ({_ratio(over['p99'], bo.get('p99'))})",
                f"{v['cpu_after_per_timeout_ms']:.1f} ms ({_ratio(v['cpu_after_s'], base.get('cpu_after_s'), 0.01)})",
                f"{_f(ov['overhead_ms'], 2)} ms ({_ratio(ov['overhead_ms'], bov.get('overhead_ms'))})",
                vs,
                f"{v['left']['tasks']} ({v['left']['running']}/{v['left']['zombies']}) "
                f"({_ratio(v['left']['tasks'], (base.get('left') or {}).get('tasks'))})",
            ])
    return tables.render(headers, rows)


def connection_table(result: dict) -> str:
    """Per in-process strategy: query stopped and control back (p50 after the deadline) with a per-call
    and a reused connection, what control back adds to query stopped, and control back per-call / reused."""
    headers = ["build", "strategy", "query stopped p50 per-call / reused", "control back p50 per-call / reused",
               "back - stopped p50 per-call / reused", "control back per-call : reused"]
    rows = []
    for build, data in result["builds"].items():
        variants = data["variants"]
        for name, v in variants.items():
            if v.get("connection", "per-call") != "per-call" or axes.STRATEGIES[v["strategy"]].starts_processes:
                continue
            r = variants.get(f"{name}/reused") or {}
            pair = [(v.get(key) or {}).get("p50") for key in ("stop_overshoot_ms", "overshoot_ms", "back_after_stop_ms")]
            reused = [(r.get(key) or {}).get("p50") for key in ("stop_overshoot_ms", "overshoot_ms", "back_after_stop_ms")]
            rows.append([build, name] + [f"{_f(x, 2)} / {_f(y, 2)} ms" for x, y in zip(pair, reused)]
                        + [_ratio(pair[1], reused[1], 0.0)])
    return tables.render(headers, rows)


def _f(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def checks(v: dict) -> list[tuple[str, bool, str]]:
    """The issue's four targets for one strategy: (label, met, measured)."""
    over, ov = v["overshoot_ms"]["p99"], v["overhead"]["overhead_ms"]
    return [
        ("overshoot p99 < 10 ms", over is not None and over < TARGETS["overshoot_p99_ms"], f"{_f(over)} ms"),
        ("zero CPU after deadline", v["cpu_after_s"] <= TARGETS["cpu_after_s"], f"{v['cpu_after_s']:.3f} s"),
        ("zero processes left", v["left"]["tasks"] <= TARGETS["left"], str(v["left"]["tasks"])),
        ("per-call overhead < 1 ms", ov is not None and ov < TARGETS["overhead_ms"], f"{_f(ov, 2)} ms"),
    ]


def verdicts(result: dict) -> list[str]:
    """Per build: the best strategy (most targets met, then lowest overshoot p99) and its checks."""
    lines = []
    for build, data in result["builds"].items():
        scored = []
        for name, v in data["variants"].items():
            if failed_every_call(v):
                continue
            c = checks(v)
            p99 = v["overshoot_ms"]["p99"]
            scored.append((-sum(ok for _, ok, _ in c), float("inf") if p99 is None else p99, name, c))
        if not scored:
            continue
        scored.sort()
        _, _, best, c = scored[0]
        all_met = [name for score, _, name, _ in scored if score == -4]
        text = "; ".join(f"{label}: {'MET' if ok else 'NOT MET'} ({value})" for label, ok, value in c)
        lines.append(f"{build}: best is {best}: {text}")
        lines.append(f"{build}: strategies meeting all four targets: {', '.join(all_met) or 'none'}")
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python bench/strategies.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--timeouts", type=int, default=200, help="timed-out calls per strategy (default 200)")
    p.add_argument("--timeout", type=float, default=0.2, help="the deadline, seconds (default 0.2)")
    p.add_argument("--rows", type=int, default=0,
                   help="rows of the timed-out query (default: calibrated to --query-factor x --timeout)")
    p.add_argument("--query-factor", type=float, default=3.0,
                   help="how long the timed-out query would run on its own, in timeouts (default 3)")
    p.add_argument("--ok-calls", type=int, default=40, help="pairs (plain, strategy) for the overhead (default 40)")
    p.add_argument("--ok-rows", type=int, default=1000, help="rows of the query that finishes in time (default 1000)")
    p.add_argument("--ok-timeout", type=float, default=10.0, help="deadline of that query, seconds (default 10)")
    p.add_argument("--settle", type=float, default=0.1, help="seconds watched after each timed-out call (default 0.1)")
    p.add_argument("--cleanup-grace", type=float, default=0.2, help="process+cleanup's SIGTERM->SIGKILL grace (0.2)")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all but prefork)")
    p.add_argument("--start-methods", default=",".join(START_METHODS), help="for the process strategies")
    p.add_argument("--connection", default="per-call",
                   help="for the in-process strategies, comma-separated: per-call (default; each call opens and "
                        "closes its DuckDB connection, the article's), reused (one kept open, as a worker does)")
    p.add_argument("--sigterm", choices=("celery", "default"), default="celery",
                   help="SIGTERM handler of the child: Celery's worker handler (default) or Python's default")
    p.add_argument("--python", action="append", default=[], metavar="BUILD=PATH",
                   help="interpreter per build (gil, nogil); default: this interpreter for its own build")
    p.add_argument("--baseline", default="",
                   help="variant the ratios divide by (default: process@<the build's default start method>)")
    p.add_argument("--json", default="", help="write the results here (default results/bench/strategies-<time>.json)")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--sampler", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.strategies = [s for s in args.strategies.split(",") if s]
    args.start_methods = [s for s in args.start_methods.split(",") if s]
    for s in args.strategies:
        if s not in STRATEGIES:
            p.error(f"--strategies: {s!r} is not one of {', '.join(STRATEGIES)} (prefork-time-limit needs Celery)")
    for s in args.start_methods:
        if s not in START_METHODS:
            p.error(f"--start-methods: {s!r} is not one of {', '.join(START_METHODS)}")
    args.connection = [c for c in args.connection.split(",") if c]
    if not args.connection or any(c not in CONNECTIONS for c in args.connection) or len(set(args.connection)) < len(args.connection):
        p.error(f"--connection: a comma-separated list of {', '.join(CONNECTIONS)}, each at most once")
    children.check_ranges(p, [("--timeouts and --ok-calls", min(args.timeouts, args.ok_calls), 1, 100_000, ""),
                              ("--timeouts and --ok-calls", max(args.timeouts, args.ok_calls), 1, 100_000, ""),
                              ("--timeout", args.timeout, 0.001, 60, " seconds")])
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    helped = children.helper_mode(args, lambda pid: sampler(pid, 0.01), Child)
    if helped is not None:
        return helped

    import sysconfig

    BASELINE["name"] = args.baseline
    pythons = {}
    for item in args.python:
        build, sep, path = item.partition("=")
        if not sep or build not in ("gil", "nogil"):
            raise SystemExit(f"bench: --python {item!r}: expected gil=PATH or nogil=PATH")
        pythons[build] = path
    if not pythons:
        pythons[("nogil" if sysconfig.get_config_var("Py_GIL_DISABLED") else "gil")] = sys.executable
    child_argv = drop_values(argv, ("--python", "--json"))
    result = {
        "command": " ".join(["python bench/strategies.py", *argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_at_start": os.getloadavg()},
        "args": {k: v for k, v in vars(args).items() if k not in ("child", "sampler", "python")},
        "targets": TARGETS,
        "builds": {},
    }
    started = time.monotonic()
    for build, python in pythons.items():
        result["builds"][build] = run_child(build, python, args, child_argv)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"]["load_avg_at_end"] = os.getloadavg()

    print(table(result))
    print()
    if any(not axes.STRATEGIES[s].starts_processes for s in args.strategies):
        print(connection_table(result))
        print()
    for line in verdicts(result):
        print(line)
    path = Path(args.json) if args.json else REPO / "results" / "bench" / time.strftime("strategies-%Y%m%d-%H%M%S.json")
    results_io.write_json(path, result)
    print(f"\nbaseline for the ratios: {args.baseline or 'process with the build default start method'}; "
          f"{result['seconds']:.0f}s; JSON: {path}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
