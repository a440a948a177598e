"""The cancellation matrix: which C calls each timeout strategy stops, on which interpreter (issue 15).

    python bench/workloads.py [--interpreters host,gil,nogil] [--workloads duckdb,sqlite,...] [--out DIR]

For every interpreter found (this machine's, and the lab's 3.14 GIL and free-threaded venvs,
`scripts/lab setup`), one child process per interpreter runs every workload of
app/kernel/workload_axis.py under every strategy that runs outside Celery (process, process+cleanup,
signals, interrupt, deadline), calling app.strategies.run as a worker's task does; the
free-threaded child runs with PYTHON_GIL=0. Per cell it measures:

- whether the call stopped: its work ended (the query raised, or the task process died) well
  before the call's natural end; `control back only` when the caller got control but the task
  process ran on; `no such stop` when the workload has none (strategies.NoSuchStop);
- the exception the caller saw, and whether it can be told from a real error (by its type, or
  only by its message);
- control back and work ended, p50/p99 ms after the deadline;
- CPU burned after the deadline to the end of the call's leftovers (a sampler process outside the
  child's tree reads the tree's CPU every 10 ms, reaped children included);
- whether the connection or object still works after a timeout (a call on a reused one);

and per workload and interpreter: its calibrated size (never fixed: QUERY seconds x its measured
speed), how fast another Python thread ran during the call (the GIL released or not), and, on
the free-threaded build, whether importing its library turned the GIL back on (a fresh process
with PYTHON_GIL unset) and the wheel that was installed (from its dist-info WHEEL file).

Like bench/strategies.py, the child installs Celery's worker SIGTERM handler (`--sigterm
default` to compare), so under fork a timed-out task process behaves as in a worker. Writes
<out>/workloads.json, workloads.md and, with matplotlib, workloads.png. Every process it starts
is joined, or killed by its pid.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

if __spec__ is None:  # run as `python bench/workloads.py`: become `python -m bench.workloads`
    _launch = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "labctl", "launch.py")
    os.execv(sys.executable, [sys.executable, _launch, "bench.workloads", *sys.argv[1:]])

from app.kernel import axes, procfs, results_io, tables  # standard library only
from app.kernel.stats import percentile
from app.kernel.workload_axis import WORKLOAD_NAMES, WORKLOADS
from labctl.parsing import drop_values

from . import children

REPO = Path(__file__).resolve().parents[1]

STRATEGIES = tuple(s.name for s in axes.STRATEGY_LIST if s.in_plain_process)
INTERPRETERS = ("host", "gil", "nogil")
SAMPLE_INTERVAL = 0.01
# a call stopped when its work ended within this share of what was left of it at the deadline
LATE = 0.25
EXIT_CODE = 49  # proc(5) field 52, exit_code (waitpid's status), in procfs.stat's numbering


# --- the sampler: the child's whole tree CPU over time, from outside it ----------------------------


def tree_cpu_ticks(root: int) -> int | None:
    """utime+stime+cutime+cstime over `root` and its descendants: what a reaped child burned stays counted."""
    total, seen = 0, False
    for pid in [root, *procfs.descendants(root)]:
        fields = procfs.stat(pid)
        if fields is None:
            continue
        seen = True
        total += sum(int(fields[i]) for i in (procfs.UTIME, procfs.STIME, procfs.UTIME + 2, procfs.STIME + 2))
    return total if seen else None


def sampler(root: int) -> int:
    """Until stdin closes: (monotonic time, tree CPU ticks) every SAMPLE_INTERVAL; print them as JSON."""
    import selectors

    series = []
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    while True:
        ticks = tree_cpu_ticks(root)
        if ticks is not None:
            series.append((round(time.monotonic(), 4), ticks))
        if sel.select(timeout=SAMPLE_INTERVAL) and not sys.stdin.buffer.read1(4096):
            break
    print(json.dumps(series))
    return 0


def cpu_between(series: list, t0: float, t1: float) -> float | None:
    """CPU seconds the tree burned from t0 to t1, from the sampled series (linear between samples)."""
    if not series or t1 < series[0][0]:
        return None

    def at(t: float) -> float:
        lo, hi = 0, len(series) - 1
        if t <= series[0][0]:
            return series[0][1]
        if t >= series[-1][0]:
            return series[-1][1]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if series[mid][0] <= t else (lo, mid)
        (ta, a), (tb, b) = series[lo], series[hi]
        return a + (b - a) * (t - ta) / max(1e-9, tb - ta)

    return round(max(0.0, at(t1) - at(t0)) / procfs.TICKS, 4)


# --- in the interpreter under test -----------------------------------------------------------------


def inspect(workload: str) -> dict:
    """A fresh process: can the workload's module be imported, its version, the GIL after the import, the wheel."""
    out = {"workload": workload, "python": platform.python_version(),
           "free_threaded": bool(__import__("sysconfig").get_config_var("Py_GIL_DISABLED"))}
    gil = getattr(sys, "_is_gil_enabled", lambda: True)
    out["gil_before"] = gil()
    w = WORKLOADS[workload]
    try:
        __import__(w.module)
    except Exception as exc:  # noqa: BLE001 - the run says it and measures the rest
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
        return out
    if w.package:  # pyarrow's compute module is what the workload calls
        __import__({"pyarrow": "pyarrow.compute"}.get(w.module, w.module))
    out["gil_after_import"] = gil()
    out["wheel"] = wheel_tag(w.package)
    return out


def wheel_tag(package: str | None) -> str:
    """What was installed: `stdlib`, `cp314t`, `abi3`, `cp311` ... from the WHEEL file, or `source build`."""
    if package is None:
        return "stdlib"
    from importlib import metadata

    try:
        text = metadata.distribution(package).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return "not installed"
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        return "unknown (no Tag in WHEEL)"
    if all(t.split("-")[-1].startswith("linux_") for t in tags):
        return f"source build ({tags[0]})"
    abis = sorted({t.split("-")[1] for t in tags})
    return ",".join(abis) + f" wheel ({tags[0].split('-')[0]})"


def _install_celery_sigterm() -> str:
    from types import SimpleNamespace

    from celery.apps.worker import install_worker_term_handler

    install_worker_term_handler(SimpleNamespace(hostname="bench"))
    return "celery"


class Child:
    """Every cell of one interpreter, in this process."""

    def __init__(self, args):
        import multiprocessing

        from app.measure import calibrate, probe, workloads
        from app.kernel import interpreter
        from app import strategies
        from app.cleanup import reap_tasks

        self.args = args
        self.mp, self.calibrate, self.probe, self.strategies, self.workloads = (
            multiprocessing, calibrate, probe, strategies, workloads)
        self.reap = reap_tasks
        self.interpreter = interpreter

    def say(self, msg: str) -> None:
        print(f"[workloads {self.args.label}] {msg}", file=sys.stderr, flush=True)

    def wait_for_tasks(self, pids: list[int], until: float, exits: dict) -> tuple[float | None, int]:
        """Poll the task processes every 10 ms until none runs or `until`: (when the last ended, how many still
        run); `exits` gets each one's end as its zombie's stat says it (`signal 15`, `exit 0`) where it is seen."""
        last_end = None
        while True:
            running = []
            for pid in pids:
                fields = procfs.stat(pid)
                if fields is not None and fields[procfs.STATE] not in ("Z", "X"):
                    running.append(pid)
                elif fields is not None and len(fields) > EXIT_CODE and pid not in exits:
                    code = int(fields[EXIT_CODE])
                    exits[pid] = f"signal {code & 0x7f}" if code & 0x7f else f"exit {code >> 8}"
            if not running:
                return last_end if last_end is not None else time.monotonic(), 0
            if time.monotonic() >= until:
                return None, len(running)
            time.sleep(0.01)
            last_end = time.monotonic()

    def cell(self, workload: str, strategy: str, size: int, alone: float) -> dict:
        a, st = self.args, axes.STRATEGIES[strategy]
        impl = self.workloads.get(workload)
        if not self.strategies.supports(strategy, workload):
            return {"strategy": strategy, "stops": "no such stop", "calls": []}
        if st.starts_processes:  # a worker starts its forkserver (or its pool) once: not inside a measured call
            self.strategies.run(strategy, 1, 30.0, workload=workload)
            if not st.keeps_workers:
                self.reap(grace=0.2)
        calls = []
        for _ in range(a.calls):
            # a kept pool's worker runs the call: watch it, not the idle one the pool starts in its place
            kept = [p.pid for p in self.probe.snapshot().tasks if not p.zombie] if st.keeps_workers else []
            out = self.strategies.run(strategy, size, a.timeout, workload=workload)
            returned = time.monotonic()
            deadline = out.started_at + a.timeout
            call = {"outcome": out.outcome, "exception_type": out.exception_type,
                    "exception_message": out.exception_message, "deadline": round(deadline, 4),
                    "back_ms": round((out.elapsed - a.timeout) * 1000, 2),
                    "stopped_ms": None if out.stopped is None else round((out.stopped - a.timeout) * 1000, 2)}
            if st.starts_processes:
                tasks = kept or [p.pid for p in self.probe.snapshot().tasks if not p.zombie]
                exits: dict = {}
                if st.cleans_up and out.outcome == "timeout":
                    # the clean-up reaps our own children itself: its counts say how each one ended
                    done = self.reap(grace=a.cleanup_grace)
                    exits.update({f"cleanup-{i}": "signal 9" if i < done.killed else "signal 15"
                                  for i in range(done.terminated)})
                ended, still = self.wait_for_tasks(tasks, returned + max(3.0, 2 * alone), exits)
                call["task_exits"] = sorted(exits.values())  # a zombie's, where one was seen before its reaping
                call["task_processes"] = len(tasks)
                call["still_running"] = still
                # the work ends when the task process does (or at the return if none was left)
                call["work_ended_ms"] = None if ended is None else round((ended - deadline) * 1000, 2)
                if still:
                    self.reap(grace=0.2)  # measured as still running; no more of it
            else:
                call["work_ended_ms"] = call["stopped_ms"] if call["stopped_ms"] is not None else call["back_ms"]
            time.sleep(a.settle)
            call["end"] = round(time.monotonic(), 4)
            calls.append(call)
        self.strategies.close_pools()  # a kept pool's way, before the reaper kills its idle worker
        self.reap(grace=0.2)  # whatever is left (zombies), before the next cell
        usable = None
        if not st.starts_processes:
            try:
                again = self.strategies.run(strategy, size, a.timeout, workload=workload, connection="reused")
                handle = self.strategies.REUSED.get(strategy, 1, workload)
                usable = impl.usable(handle)
                usable = None if usable is None else bool(usable) and again.outcome == "timeout"
            except Exception as exc:  # noqa: BLE001 - a broken handle is the measurement
                usable = f"no: {type(exc).__name__}: {exc}"[:120]
            finally:
                try:
                    self.strategies.REUSED.discard(strategy, 1, workload)
                except Exception:  # noqa: BLE001
                    pass
        return {"strategy": strategy, "calls": calls, "usable_after": usable,
                "start_method": self.mp.get_start_method() if st.starts_processes else None}

    def workload(self, name: str) -> dict:
        a = self.args
        impl = self.workloads.get(name)
        info = inspect(name)
        if "error" in info:
            self.say(f"{name}: cannot be imported here ({info['error']}): not measured")
            return {"workload": name, "error": info["error"]}
        cal = self.calibrate.cached(1, workload=name)
        size = cal.rows_for(a.timeout * a.query_factor)
        target = a.timeout * a.query_factor

        def alone_for(n: int) -> float:
            took = []
            for _ in range(2):  # the first one also warms the library up
                t = time.perf_counter()
                impl.run(n)
                took.append(time.perf_counter() - t)
            return min(took)

        alone = alone_for(size)
        if not 0.6 * target <= alone <= 2 * target:
            # the probe's 80 ms calls met another load than this one (a shared machine): size it again
            # from this call's own speed, once
            self.say(f"{name}: {size:,} {impl.unit} took {alone:.2f} s for a {target:.2f} s target: resized")
            size = max(1, round(size * target / max(alone, 1e-3)))
            alone = alone_for(size)
        speed = self.workloads.other_thread_speed(name, cal.rows_for(0.3))
        self.say(f"{name}: {size:,} {impl.unit} ({alone:.2f} s alone, {cal.describe()}); another thread ran at "
                 f"{speed:.0%} of its speed during the call")
        cells = {}
        for strategy in a.strategies:
            cells[strategy] = self.cell(name, strategy, size, alone)
        return {"workload": name, "size": size, "unit": impl.unit, "alone_s": round(alone, 3),
                "calibration": cal.as_dict(), "thread_speed_during_call": speed,
                "gil_after_import_here": self.interpreter.gil_enabled(), "cells": cells}

    def main(self) -> dict:
        a = self.args
        sigterm = _install_celery_sigterm() if a.sigterm == "celery" else "default"
        out = {"python": platform.python_version(), "build": self.interpreter.build_flavour(),
               "python_gil_env": os.environ.get("PYTHON_GIL"), "start_method": self.mp.get_start_method(),
               "sigterm": sigterm, "workloads": {}}
        for name in a.workloads:
            try:
                out["workloads"][name] = self.workload(name)
            except Exception as exc:  # noqa: BLE001 - one line, and the rest is measured
                self.reap(grace=0.2)
                self.say(f"{name}: failed ({type(exc).__name__}: {exc}): not measured")
                out["workloads"][name] = {"workload": name, "error": f"failed: {type(exc).__name__}: {exc}"[:200]}
        out["gil_enabled_at_end"] = self.interpreter.gil_enabled()
        return out


# --- the parent ----------------------------------------------------------------------------------


def find_interpreters(args) -> dict[str, tuple[str, dict]]:
    """name -> (python, extra env): --python first, else this machine's and the lab's 3.14 venvs."""
    from labctl import paths

    given = dict(item.split("=", 1) for item in args.python)
    found: dict[str, tuple[str, dict]] = {}
    version = os.environ.get("PYTHON_VERSION") or paths.DEFAULT_PYTHON_VERSION
    for name in args.interpreters:
        python = given.get(name)
        if python is None and name == "host":
            python = _host_python(paths)
        elif python is None:
            venv = paths.venv_dir(version, name)
            if not (venv / "bin" / "python").exists():  # another requirements hash: the newest one there is
                venv = _newest(paths, f"{version}-{name}-*", venv.name) or venv
            python = str(venv / "bin" / "python") if (venv / "bin" / "python").exists() else None
        if python is None:
            print(f"workloads: no {name} interpreter (scripts/lab setup builds the 3.14 ones): not measured",
                  file=sys.stderr)
            continue
        found[name] = (python, {"PYTHON_GIL": "0"} if name == "nogil" else {})
    return found


def _host_python(paths) -> str | None:
    """This machine's python: the one running this if it has the lab's packages, else its newest quick venv."""
    ok = subprocess.run([sys.executable, "-c", "import duckdb, timeout_decorator, psutil, celery"],
                        capture_output=True).returncode == 0
    if ok:
        return sys.executable
    venv = _newest(paths, "host-*", f"-{paths.requirements_key(*paths.VENV_REQUIREMENTS)}")
    return None if venv is None else str(venv / "bin" / "python")


def _newest(paths, pattern: str, preferred_suffix: str):
    """The complete venv of the lab's cache matching `pattern`: the one of today's requirements, else the newest."""
    venvs = [v for v in (paths.cache_root() / "venv").glob(pattern) if (v / "bin" / "python").exists()]
    for v in venvs:
        if v.name.endswith(preferred_suffix):
            return v
    venvs.sort(key=lambda v: v.stat().st_mtime)
    return venvs[-1] if venvs else None


def run_inspect(python: str, workload: str) -> dict:
    """inspect() in a fresh process with PYTHON_GIL unset: what the import does on its own."""
    done = subprocess.run(children.module(python, "workloads", "--inspect", workload), env=children.env(),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    if done.returncode:
        return {"workload": workload, "error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(done.stdout)


def run_child(name: str, python: str, extra: dict, argv: list[str]) -> dict:
    data, seen = children.measure("workloads", name, children.module(python, "workloads", f"--label={name}", *argv),
                                  children.env(extra), children.module(sys.executable, "workloads", "--sampler"),
                                  children.env())
    series = json.loads(seen or "[]")
    for w in data["workloads"].values():
        for cell in (w.get("cells") or {}).values():
            for call in cell["calls"]:
                call["cpu_after_deadline_s"] = cpu_between(series, call["deadline"], call["end"])
    data["python_path"] = python
    return data


def summarize(result: dict, timeout: float) -> list[dict]:
    """One row per interpreter x workload x strategy: the matrix."""
    rows = []
    for name, data in result["interpreters"].items():
        for wname, w in data["workloads"].items():
            imp = (result["imports"].get(name) or {}).get(wname, {})
            if "error" in w:
                rows.append({"interpreter": name, "workload": wname, "strategy": "-", "stops": "not importable: "
                             + w["error"][:60]})
                continue
            for sname, cell in w["cells"].items():
                row = {"interpreter": name, "python": data["python"], "gil": _gil_label(data, w),
                       "workload": wname, "strategy": sname, "size": w["size"], "alone_s": w["alone_s"],
                       "thread_speed": w["thread_speed_during_call"],
                       "gil_after_import": imp.get("gil_after_import"), "wheel": imp.get("wheel")}
                calls = cell["calls"]
                if not calls:
                    row["stops"] = cell["stops"]
                    rows.append(row)
                    continue
                late = LATE * (w["alone_s"] - timeout) * 1000
                ended = [c["work_ended_ms"] for c in calls]
                back = [c["back_ms"] for c in calls]
                stopped = sum(1 for c, e in zip(calls, ended) if _stopped(c, e, late))
                back_ok = sum(1 for b in back if b < late)
                if stopped == len(calls):
                    row["stops"] = "yes"
                elif back_ok == len(calls) and stopped == 0:
                    row["stops"] = "control back only: the work ran on"
                elif stopped == 0:
                    row["stops"] = "no: ran to its end"
                else:
                    row["stops"] = f"{stopped}/{len(calls)}"
                types = sorted({c["exception_type"] or c["outcome"] for c in calls})
                row["exception"] = ", ".join(types)
                row["told_apart"] = _told_apart(sname, wname, calls)
                row["back_ms"] = (percentile(back, 0.5), percentile(back, 0.99))
                known = [e for e in ended if e is not None]
                row["ended_ms"] = (percentile(known, 0.5), percentile(known, 0.99)) if len(known) == len(ended) else None
                cpus = [c["cpu_after_deadline_s"] for c in calls if c.get("cpu_after_deadline_s") is not None]
                row["cpu_after_s"] = percentile(cpus, 0.5)
                row["still_running"] = sum(c.get("still_running", 0) for c in calls)
                row["usable"] = cell.get("usable_after")
                row["start_method"] = cell.get("start_method")
                row["calls"] = len(calls)
                rows.append(row)
    return rows


def _stopped(call: dict, ended_ms: float | None, late_ms: float) -> bool:
    """Whether the call's work was stopped: its task process killed by a signal, else its work ended in the first
    LATE share of what was left of it at the deadline (a task process that exited 0 finished its call)."""
    if call["outcome"] not in ("timeout", "ok"):  # the call failed some other way: nothing was stopped
        return False
    exits = call.get("task_exits") or []
    if exits:
        return all(e.startswith("signal") for e in exits)
    if ended_ms is not None and ended_ms < late_ms:
        return True
    # a process the forkserver reaped (no zombie to read) or a loaded machine's slow wall clock: the work
    # was stopped if the tree burned less than that share of what was left of the call (one core's worth)
    cpu = call.get("cpu_after_deadline_s")
    return cpu is not None and ended_ms is not None and cpu * 1000 < late_ms


def _gil_label(data: dict, w: dict) -> str:
    return "on" if w.get("gil_after_import_here", True) else "off"


def _told_apart(strategy: str, workload: str, calls: list[dict]) -> str:
    """By type, or only by its message, from the Sign that matched what was raised (app/kernel/axes.py, app/measure/workloads.py)."""
    from app.measure import workloads

    seen = set()
    for c in calls:
        t = c["exception_type"] or ""
        if c["outcome"] != "timeout":
            seen.add(f"no: {c['outcome']}")
            continue
        if t.startswith("timeout_decorator"):
            seen.add("by type")
            continue
        sign = next((s for s in axes.STRATEGIES[strategy].signs + workloads.get(workload).signs
                     if s.type in (t, t.rsplit(".", 1)[-1]) and (s.says is None or s.says in (c["exception_message"] or "").lower())),
                    None)
        seen.add("no" if sign is None else "by type" if sign.says is None else f"by message only ('{sign.says}')")
    return "; ".join(sorted(seen))


def _fmt_ms(pair) -> str:
    if not pair:
        return "-"
    return f"{pair[0]:.0f} / {pair[1]:.0f}"


def table(rows: list[dict], markdown: bool = False) -> str:
    headers = ["interp", "GIL", "workload", "strategy", "stops", "exception seen", "told from a real error",
               "control back p50/p99 ms", "work ended p50/p99 ms", "CPU after deadline s (p50)", "usable after"]
    out = []
    for r in rows:
        if "exception" not in r:
            out.append([r["interpreter"], r.get("gil", "-"), r["workload"], r["strategy"], r["stops"]] + ["-"] * 6)
            continue
        usable = {True: "yes", False: "no", None: "n/a"}.get(r["usable"], r["usable"])
        if r["start_method"]:
            usable = f"n/a ({r['start_method']} task process)"
        out.append([r["interpreter"], r["gil"], r["workload"], r["strategy"], r["stops"], r["exception"],
                    r["told_apart"], _fmt_ms(r["back_ms"]), _fmt_ms(r["ended_ms"]) if r["ended_ms"] else "not all ended",
                    f"{r['cpu_after_s']:.3f}" if r["cpu_after_s"] is not None else "-", usable])
    return tables.render(headers, out, markdown=markdown)


def facts_table(result: dict, markdown: bool = False) -> str:
    """Per interpreter x workload: size, alone, another thread's speed during the call, GIL after import, wheel."""
    headers = ["interp", "python", "workload", "size (calibrated)", "alone s", "other thread's speed during the call",
               "GIL after import (PYTHON_GIL unset)", "installed"]
    out = []
    for name, data in result["interpreters"].items():
        for wname, w in data["workloads"].items():
            imp = (result["imports"].get(name) or {}).get(wname, {})
            if "error" in w:
                out.append([name, data["python"], wname, "not importable", "-", "-", "-", w["error"][:60]])
                continue
            gil = imp.get("gil_after_import")
            gil_text = "-" if gil is None else ("on" if gil else "off")
            if not imp.get("free_threaded"):
                gil_text = "on (GIL build)"
            out.append([name, data["python"], wname, f"{w['size']:,} {w['unit']}", f"{w['alone_s']:.2f}",
                        f"{w['thread_speed_during_call']:.0%}", gil_text, imp.get("wheel", "-")])
    return tables.render(headers, out, markdown=markdown)


def recommended(workload: str) -> str:
    """The lab's strategy for a kind of call (README, docs/workloads.md): the library's own deadline,
    else a watchdog interrupt, else a process reaped after the timeout."""
    stops = WORKLOADS[workload].stops
    return "deadline" if "deadline" in stops else "interrupt" if "interrupt" in stops else "process+cleanup"


def _cost(row: dict) -> tuple[float, float, int]:
    """(p99 control back ms, CPU after the deadline s, task processes still running): lower is better."""
    return (row["back_ms"][1], row["cpu_after_s"] or 0.0, row["still_running"])


def targets(rows: list[dict]) -> list[str]:
    """Per interpreter and workload: the lab's strategy against the best library (the one whose call
    stopped, back soonest at p99), on control back and on what is left; met or missed, and ratios."""
    measured = [r for r in rows if "exception" in r]
    out = []
    for interp, workload in dict.fromkeys((r["interpreter"], r["workload"]) for r in measured):
        cells = {r["strategy"]: r for r in measured if (r["interpreter"], r["workload"]) == (interp, workload)}
        ours = cells.get(recommended(workload))
        libs = [r for name, r in cells.items() if axes.STRATEGIES[name].library and not axes.STRATEGIES[name].cleans_up]
        if ours is None or not libs:
            continue
        best = min(libs, key=lambda r: (r["stops"] != "yes", _cost(r)))
        back, cpu, running = _cost(ours)
        b_back, b_cpu, b_running = _cost(best)
        # "matches": within 5 ms or 10 % at p99, as the noise of one quiet run allows
        on_time = back <= max(b_back * 1.1, b_back + 5)
        clean = cpu <= b_cpu + 0.05 and running <= b_running
        verdict = "met" if on_time and clean and ours["stops"] == "yes" else "missed"
        why = "" if verdict == "met" else (f": {best['strategy']} wins on " + ", ".join(
            w for w, bad in (("control back", not on_time), ("what it leaves", not clean),
                             ("stopping the work", ours["stops"] != "yes")) if bad))
        ratios = ", ".join(f"{b_back / max(cells[base]['back_ms'][1], 0.5):.2f}x {base}'s"
                           for base in ("process", "deadline") if base in cells)
        out.append(f"target {interp} {workload}: {verdict}{why}. {ours['strategy']} p99 {back:.0f} ms, {cpu:.3f} CPU s, "
                   f"{running} running; best library {best['strategy']} ({best['stops']}) p99 {b_back:.0f} ms, "
                   f"{b_cpu:.3f} CPU s, {b_running} running; its p99 is {ratios or 'not comparable'}")
    return out


def chart(rows: list[dict], path: Path) -> bool:
    """A heat map of the matrix: stopped (green), control back only (orange), some calls (yellow), not stopped (red),
    no such stop (grey)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - the chart is optional
        return False
    cols = sorted({(r["interpreter"], r["strategy"]) for r in rows if r["strategy"] != "-"},
                  key=lambda k: (INTERPRETERS.index(k[0]) if k[0] in INTERPRETERS else 9, STRATEGIES.index(k[1])))
    wl = [w for w in WORKLOAD_NAMES if any(r["workload"] == w for r in rows)]
    score = {"yes": 4, "control back only: the work ran on": 3, "no such stop": 0, "no: ran to its end": 1}

    def level(c, w) -> int:
        stops = next((r["stops"] for r in rows if (r["interpreter"], r["strategy"]) == c and r["workload"] == w), None)
        return -1 if stops is None else score.get(stops, 2)  # 2: some calls stopped, some not

    grid = [[level(c, w) for c in cols] for w in wl]
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(cols) + 2), 0.6 * len(wl) + 2))
    ax.imshow(grid, cmap=ListedColormap(["white", "lightgrey", "tomato", "gold", "orange", "mediumseagreen"]),
              vmin=-1, vmax=4)
    ax.set_xticks(range(len(cols)), [f"{i}\n{s}" for i, s in cols], rotation=90, fontsize=7)
    ax.set_yticks(range(len(wl)), wl)
    ax.set_title("does it stop? green yes, orange control back only (the work ran on), yellow some calls, red no, "
                 "grey no such stop", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A bad flag: one line and exit status 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: {message} (--help lists the options)\n")


def parse_args(argv):
    p = _Parser(prog="python bench/workloads.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--interpreters", default=",".join(INTERPRETERS),
                   help="comma-separated: host (this machine's python), gil, nogil (the 3.14 venvs; default all)")
    p.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                   help="the interpreter for host, gil or nogil (default: found as --interpreters says)")
    p.add_argument("--workloads", default=",".join(WORKLOAD_NAMES), help="comma-separated (default: all)")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all but prefork)")
    p.add_argument("--calls", type=int, default=8, help="timed-out calls per cell (default 8)")
    p.add_argument("--timeout", type=float, default=0.1, help="the deadline, seconds (default 0.1)")
    p.add_argument("--query-factor", type=float, default=8.0,
                   help="how long each call would run on its own, in timeouts (default 8; sized by calibration)")
    p.add_argument("--settle", type=float, default=0.05, help="seconds after each call's end (default 0.05)")
    p.add_argument("--cleanup-grace", type=float, default=0.2, help="process+cleanup's SIGTERM->SIGKILL grace (0.2)")
    p.add_argument("--sigterm", choices=("celery", "default"), default="celery",
                   help="the child's SIGTERM handler: Celery's worker handler (default) or Python's")
    p.add_argument("--out", default="", help="folder for workloads.json/.md/.png (default results/workloads-<time>)")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--label", default="host", help=argparse.SUPPRESS)
    p.add_argument("--sampler", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--inspect", default="", help=argparse.SUPPRESS)
    p.add_argument("--chart", default="", help=argparse.SUPPRESS)  # DIR: workloads.json -> workloads.png
    args = p.parse_args(argv)

    def items(flag: str, value: str, known) -> list[str]:
        out = [x for x in value.split(",") if x]
        bad = [x for x in out if x not in known]
        if bad or not out or len(set(out)) < len(out):
            p.error(f"{flag}: a comma-separated list of {', '.join(known)}, each at most once (got {value!r})")
        return out

    args.interpreters = items("--interpreters", args.interpreters, INTERPRETERS)
    args.workloads = items("--workloads", args.workloads, WORKLOAD_NAMES)
    args.strategies = items("--strategies", args.strategies, STRATEGIES)
    for item in args.python:
        if item.partition("=")[0] not in INTERPRETERS or "=" not in item:
            p.error(f"--python {item!r}: expected host=PATH, gil=PATH or nogil=PATH")
    children.check_ranges(p, [("--calls", args.calls, 1, 10_000, ""), ("--timeout", args.timeout, 0.01, 60, " seconds"),
                              ("--query-factor", args.query_factor, 2, 1000, "")])
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    helped = children.helper_mode(args, sampler, Child)
    if helped is not None:
        return helped
    if args.inspect:
        print(json.dumps(inspect(args.inspect)))
        return 0
    if args.chart:
        folder = Path(args.chart)
        rows = json.loads((folder / "workloads.json").read_text())["matrix"]
        return 0 if chart(rows, folder / "workloads.png") else 1
    child_argv = drop_values(argv, ("--python", "--out", "--interpreters"))
    out = Path(args.out) if args.out else REPO / "results" / time.strftime("workloads-%Y%m%d-%H%M%S")
    result = {"command": " ".join(["python bench/workloads.py", *argv]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_avg_at_start": os.getloadavg()},
              "args": {k: v for k, v in vars(args).items() if k not in ("child", "sampler", "inspect", "label", "chart")},
              "interpreters": {}, "imports": {}}
    started = time.monotonic()
    for name, (python, extra) in find_interpreters(args).items():
        result["imports"][name] = {w: run_inspect(python, w) for w in args.workloads}
        for w, info in result["imports"][name].items():
            if "error" in info:
                print(f"workloads: {w} cannot be imported on {name} ({python}): {info['error']}", file=sys.stderr)
        result["interpreters"][name] = run_child(name, python, extra, child_argv)
    if not result["interpreters"]:
        print("workloads: no interpreter to measure", file=sys.stderr)
        return 1
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    rows = summarize(result, args.timeout)
    result["matrix"] = rows
    result["targets"] = targets(rows)
    print(table(rows))
    print()
    print(facts_table(result))
    print()
    print("\n".join(result["targets"]))
    results_io.write_json(out / "workloads.json", result)
    md = (f"# The cancellation matrix\n\n`{result['command']}`, {result['date']}, {result['seconds']:.0f} s, "
          f"{os.cpu_count()} CPUs, load {result['machine']['load_avg_at_start'][0]:.1f} at the start; "
          f"timeout {args.timeout} s, {args.calls} calls per cell.\n\n"
          + table(rows, markdown=True) + "\n\n" + facts_table(result, markdown=True) + "\n\n"
          + "".join(f"- {line}\n" for line in result["targets"]))
    (out / "workloads.md").write_text(md)
    png = chart(rows, out / "workloads.png")
    for python in [] if png else [d["python_path"] for d in result["interpreters"].values()]:
        # no matplotlib here: a measured interpreter has it (requirements/report.txt)
        png = subprocess.run(children.module(python, "workloads", "--chart", str(out)), env=children.env(),
                             cwd=REPO, capture_output=True).returncode == 0
        if png:
            break
    print(f"\n{result['seconds']:.0f} s; {out / 'workloads.json'}, workloads.md" + (", workloads.png" if png else ""))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
