"""Verdicts and the table for `scripts/lab claims`, computed from what the jobs measured.

Every verdict is a rule over the measurements in claims.json, never typed in by hand. Each claim
comes back as: verdict, summary (the numbers, short, for the table), why (one sentence),
measured (one line per configuration, for the details section) and facts (the values the rule
looked at, which tests/claims/ pin).

No rule turns missing data into a reason. A job whose record is missing from claims.json, that
failed (its error), or that lacks an iteration's record is "not measured" with that reason; a
job whose premise failed (its query ended before its deadline, so nothing was timed out) is
"premise failed" with the numbers, never evidence for or against a claim. A claim with nothing
left to judge says "not measured" and why; a claim judged on part of its jobs names the rest.
tests/claims/test_claims_rules.py runs every rule on recorded claims.json files.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from app.kernel import axes, defaults, tables, workload_axis

HOLDS, CAVEAT, FAILS, UNMEASURED = "holds", "holds with a caveat", "does not hold", "not measured"
PREMISE = "premise failed"

STATEMENTS = {
    1: "On the GIL build, timeouts through timeout-decorator's multiprocessing fallback (`use_signals=False`) "
       "leave child processes and zombies behind each iteration (article: `children=3 zombies=1`).",
    2: "Reaping the task processes after the timeout brings zombies back to 0 "
       "(`children=2`: the resource tracker and the forkserver).",
    3: "The free-threaded build does not make the problem go away on its own.",
    4: "Importing a C extension that is not marked free-threading-safe (DuckDB) turns the GIL back on.",
    5: "Under the GIL a thread cannot stop a long C-extension call, so the call needs process isolation.",
    6: "Celery's default prefork pool cannot run the multiprocessing fallback "
       "(\"daemonic processes are not allowed to have children\"); the solo pool can.",
    7: "On Python 3.14 the timed function must be a top-level function (forkserver pickles it).",
    8: "The mitigations work: reaping the children, Celery time limits, `--max-tasks-per-child`, "
       "and `con.interrupt()` from a dedicated thread.",
}
DAEMONIC = "daemonic processes are not allowed to have children"
METHOD_ORDER = list(axes.START_METHODS)
INTERPS = ("host", "gil", "nogil")
FAST = 0.5  # seconds past the deadline that still count as "stopped on time" on this noisy machine
# The thread-stop query must run at least this many deadlines alone: then an exception landing at
# the deadline shows as under half of the query's CPU, and one landing at its end as about all.
THREAD_STOP_MIN_DEADLINES = 2.0
CLEANUP_GRACE_SECONDS = 1.0  # app.kernel.defaults.CLEANUP_GRACE_SECONDS: the hard time limit's margin, for old records
PROCESS_STRATEGIES = axes.PROCESS_STRATEGIES  # the multiprocessing fallback: a process per call
NOT_RECORDED = ("missing", "failed")  # outcomes `app.experiments.claims send` writes for an iteration without a record
# What the thread-stop experiment's watchdog raises (app/experiments/claims.py); records made before
# the experiments had a folder of their own name it app.experiments.WatchdogTimeout.
WATCHDOG_TIMEOUTS = ("app.experiments.claims.WatchdogTimeout", "app.experiments.WatchdogTimeout")
# Claim 5, one verdict per workload (app/kernel/workload_axis.py), DuckDB first; the name of each one's interrupt
STOP_WORKLOADS = workload_axis.WORKLOAD_NAMES
INTERRUPT_NAMES = {"duckdb": "`con.interrupt()`", "sqlite": "`Connection.interrupt()`",
                   "pyarrow": "SIGINT to Arrow's stop token"}


# --- reading the measurements ---------------------------------------------------------------------


def label(data: dict, interp: str, short: bool = True) -> str:
    """`3.11`, `3.14`, `3.14t` (short) or `3.11.7 (host)`, `3.14.7 gil`, `3.14.7 free-threaded`."""
    v = data["interpreters"]["versions"].get(interp, {}).get("python")
    if short:
        base = ".".join(v.split(".")[:2]) if v else {"host": "host", "gil": "3.14", "nogil": "3.14"}[interp]
        return base + ("t" if interp == "nogil" else "")
    v = v or "?"
    return {"host": f"{v} (host python3)", "gil": f"{v} gil", "nogil": f"{v} free-threaded"}[interp]


def planned(data: dict) -> dict[str, dict]:
    """Every job the run planned (job id -> spec). Records written before the plan was kept: the jobs there."""
    return data.get("plan") or {job_id: d.get("job", {}) for job_id, d in data["jobs"].items()}


def _spec(data: dict, job_id: str) -> dict:
    return (data["jobs"].get(job_id) or {}).get("job") or planned(data).get(job_id, {})


def _first_line(text: str, width: int = 160) -> str:
    return (text or "").strip().splitlines()[0][:width] if (text or "").strip() else "(no message)"


def job_problem(data: dict, job_id: str) -> str | None:
    """Why a planned job gives nothing (or only part) to judge, or None: its record is missing, it
    failed (with its error), or an iteration has no record."""
    d = data["jobs"].get(job_id)
    if d is None:
        return "its record is missing from claims.json"
    if d.get("error"):
        return f"the job failed: {_first_line(d['error'])}"
    spec = _spec(data, job_id)
    if spec.get("kind") == "plain":
        return None if d.get("result") else "the job gave no result"
    records = d.get("records") or []
    if not records:
        return "the job gave no records"
    bad = [r for r in records if r.get("outcome") in NOT_RECORDED]
    if bad:
        r = bad[0]
        return (f"iteration {r.get('iteration')} has no record ({r.get('outcome')}: "
                f"{r.get('exception_type')}: {_first_line(r.get('exception_message') or '', 100)})")
    want = spec.get("iterations") or (data.get("settings") or {}).get("ITERATIONS")
    if want:
        have = {r.get("iteration") for r in records}
        absent = [i for i in range(1, int(want) + 1) if i not in have]
        if absent:
            return f"no record of iteration {', '.join(map(str, absent))} (of {want})"
    return None


def _rows_text(rows) -> str:
    vals = sorted({int(r) for r in rows if isinstance(r, (int, float))})
    if not vals:
        return "? rows"
    return (f"{vals[0]:,} rows" if len(vals) == 1 else f"{vals[0]:,}-{vals[-1]:,} rows")


def premise_failure(d: dict) -> str | None:
    """Why a job's measurement has no premise, or None: the query ended before its deadline (or, for
    the solo pool's time limits, before the limit), so nothing was cut short and nothing can be
    judged. The words start with "the query ..." and go after "premise failed: "."""
    spec = d.get("job") or {}
    if d.get("error"):
        return None
    if spec.get("kind") == "plain":
        if spec.get("experiment") != "thread-stop" or not d.get("result"):
            return None
        r = d["result"]
        if stop_workload(spec) != "duckdb":
            return _workload_premise(r)
        a, i = r.get("async_exc") or {}, r.get("interrupt") or {}
        deadline = r.get("deadline") or 0.0
        sized = f"{_rows_text([r.get('rows')])}, {_secs(r.get('expected_seconds'))} expected"
        if a.get("watchdog_ran_at") is None or i.get("watchdog_ran_at") is None or r.get("query_alone", 0) < deadline:
            return (f"the query ended before its deadline (alone {_secs(r.get('query_alone'))}, deadline "
                    f"{deadline:g} s; {sized}): the timer thread never fired during the call")
        if r.get("query_alone", 0) < THREAD_STOP_MIN_DEADLINES * deadline:
            return (f"the query ran only {_secs(r.get('query_alone'))} alone, under {THREAD_STOP_MIN_DEADLINES:g}x its "
                    f"{deadline:g} s deadline ({sized}): an exception at the deadline and one at its end look alike")
        return None
    if spec.get("kind") != "worker":
        return None
    recs = [r for r in d.get("records") or [] if r.get("outcome") not in NOT_RECORDED]
    if not recs:
        return None
    if axes.limits_ignored(spec.get("strategy"), spec.get("pool")):
        limits = d.get("time_limits") or {}
        limit = limits.get("time_limit") or (recs[0].get("timeout") or 0) + CLEANUP_GRACE_SECONDS
        short = [r for r in recs if r.get("outcome") == "ok" and (r.get("elapsed") or 0) <= limit]
        if short:
            return (f"the query ended before the time limit ({span(r.get('elapsed') for r in short)} <= {limit:g} s; "
                    f"{_rows_text(r.get('rows') for r in short)}): a limit that never came due was not ignored")
        return None
    early = [r for r in recs if r.get("outcome") == "ok"]
    if early:
        deadline = joined(f"{r['timeout']:g}" for r in early if isinstance(r.get("timeout"), (int, float))) or "?"
        return (f"the query ended before its deadline in {len(early)} of {len(recs)} iterations (it ran "
                f"{span(r.get('elapsed') for r in early)}, deadline {deadline} s; "
                f"{_rows_text(r.get('rows') for r in early)}, {span(r.get('expected_seconds') for r in early)} expected): "
                "nothing was timed out")
    if spec.get("strategy") in PROCESS_STRATEGIES:
        # What the fallback leaves is counted at the settled snapshot, timeout + settle after the call
        # began: a timed-out child that keeps running (fork) must still be running then, or a query
        # that ends on its own in the settle window reads as "cleared" / "reaped".
        short = [r for r in recs if r.get("outcome") == "timeout" and isinstance(r.get("expected_seconds"), (int, float))
                 and r.get("settle_seconds") is not None
                 and r["expected_seconds"] < (r.get("timeout") or 0) + r["settle_seconds"]]
        if short:
            r = short[0]
            return (f"the query was sized to end {span(x['expected_seconds'] for x in short)} after it began "
                    f"({_rows_text(x.get('rows') for x in short)}), before the settled snapshot "
                    f"{(r.get('timeout') or 0) + r['settle_seconds']:g} s after it: a timed-out child would end on "
                    "its own before it is counted")
    return None


def stop_workload(spec: dict | None) -> str:
    """The workload a thread-stop job measured (its params'; DuckDB in records from before there were others)."""
    return ((spec or {}).get("params") or {}).get("workload") or "duckdb"


def _workload_premise(r: dict) -> str | None:
    """premise_failure of a thread-stop job on a workload other than DuckDB (None also when it could not be imported)."""
    if r.get("import_error"):
        return None
    a, deadline, alone = r.get("async_exc") or {}, r.get("deadline") or 0.0, r.get("query_alone") or 0.0
    sized = (f"{r['workload']}: {r.get('rows') or 0:,} {r.get('unit', 'units')}, "
             f"{_secs(r.get('expected_seconds'))} expected")
    if alone < deadline or (a.get("call_finished") and (a.get("elapsed") or 0.0) < deadline):
        return (f"the query ended before its deadline ({sized}; alone {_secs(alone)}, deadline {deadline:g} s): "
                "the watchdog had nothing to stop")
    if alone < THREAD_STOP_MIN_DEADLINES * deadline:
        return (f"the query ran only {_secs(alone)} alone, under {THREAD_STOP_MIN_DEADLINES:g}x its {deadline:g} s "
                f"deadline ({sized}): an exception at the deadline and one at its end look alike")
    return None


def _matches(spec: dict, match: dict) -> bool:
    return all(spec.get(k) == v for k, v in match.items())


def gaps(data: dict, kind: str, **match) -> list[tuple[str, str]]:
    """Planned jobs of `kind` matching `match` that cannot be judged, with why: (job id, reason)."""
    out = []
    for job_id, spec in sorted(planned(data).items()):
        spec = _spec(data, job_id) or spec
        if spec.get("kind") != kind or not _matches(spec, match):
            continue
        problem = job_problem(data, job_id)
        if problem is None:
            premise = premise_failure(data["jobs"][job_id])
            problem = f"{PREMISE}: {premise}" if premise else None
        if problem:
            out.append((job_id, problem))
    return out


def worker_jobs(data: dict, premise: bool = True, **match) -> list[tuple[str, dict]]:
    """Worker jobs whose spec matches every key of `match` and that can be judged: every iteration
    recorded and (with `premise`) the query outlasted its deadline. The others: `gaps`."""
    out = []
    for job_id, d in _ordered(data):
        spec = d.get("job", {})
        if spec.get("kind") == "worker" and _matches(spec, match) and job_problem(data, job_id) is None \
                and not (premise and premise_failure(d)):
            out.append((job_id, d))
    return out


def plain_jobs(data: dict, experiment: str) -> list[tuple[str, dict]]:
    """Experiments that gave a result whose premise held."""
    return [(job_id, d) for job_id, d in _ordered(data)
            if d.get("job", {}).get("experiment") == experiment and job_problem(data, job_id) is None
            and not premise_failure(d)]


def _ordered(data: dict) -> list[tuple[str, dict]]:
    """Jobs in a reading order: host python first, then 3.14, then 3.14t; fork before forkserver."""

    def key(item):
        spec = item[1].get("job", {})
        method = spec.get("start_method")
        return (INTERPS.index(spec.get("interp", "host")),
                METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), item[0])

    return sorted(data["jobs"].items(), key=key)


def gap_text(items: list[tuple[str, str]]) -> str:
    return "; ".join(f"`{job_id}`: {reason}" for job_id, reason in items)


def missing_interpreters(data: dict, *interps: str) -> str:
    """Why these interpreters were not there (e.g. no 3.14 builds: `scripts/lab setup`)."""
    missing = data["interpreters"].get("missing") or {}
    return "; ".join(missing[i] for i in interps if i in missing)


def not_measured(data: dict, found: list[tuple[str, str]], default: str, *interps: str) -> dict:
    """The row of a claim with nothing left to judge, and why."""
    why = missing_interpreters(data, *interps)
    if found and all(reason.startswith(PREMISE) for _, reason in found):
        early = all(r.startswith(f"{PREMISE}: the query ended before its deadline") for _, r in found)
        reason = (f"{PREMISE}: "
                  + ("the query ended before its deadline, nothing was timed out to judge (" if early
                     else "the query ended too soon to judge (")
                  + "; ".join(f"`{j}`: {r[len(PREMISE) + 2:]}" for j, r in found) + ")")
    elif found:
        reason = "not measured: " + gap_text(found)
    else:
        reason = default + (f" ({why})" if why else "")
    return unmeasured(reason, {"not_measured": dict(found)})


def with_gaps(result: dict, found: list[tuple[str, str]]) -> dict:
    """A verdict judged on part of its jobs: name the jobs left out and why."""
    if found:
        result["facts"]["not_measured"] = dict(found)
        result["summary"] += "; not judged: " + gap_text(found)
        result["measured"] = list(result["measured"]) + [f"not judged: `{j}`: {r}" for j, r in found]
    return result


def snap(record: dict, which: str) -> dict:
    s = record.get(which) or {}
    tasks = [p for p in s.get("processes", []) if p.get("role") == "task"]
    return {
        "children": s.get("children"),
        "zombies": s.get("zombies"),
        "tasks": len(tasks),
        "live_tasks": sum(1 for p in tasks if p.get("status") != "zombie"),
        "roles": {k: v for k, v in (s.get("roles") or {}).items() if v},
    }


def series(d: dict) -> dict:
    """One worker job's numbers, per iteration and at the end."""
    recs = sorted(d["records"], key=lambda r: r.get("iteration", 0))
    left = d.get("leftovers") or {}
    return {
        "outcomes": [r.get("outcome") for r in recs],
        "exception_types": sorted({r["exception_type"] for r in recs if r.get("exception_type")}),
        "exception_messages": sorted({r["exception_message"][:80] for r in recs if r.get("exception_message")}),
        "immediate": [snap(r, "immediate") for r in recs],
        "settled": [snap(r, "settled") for r in recs],
        "overshoot": [r.get("overshoot") for r in recs],
        "elapsed": [r.get("elapsed") for r in recs],
        "cpu_after_deadline": [r.get("cpu_after_deadline") for r in recs],
        "cleanup": [r.get("cleanup") for r in recs],
        "pids": [r.get("pid") for r in recs],
        "gil_enabled": sorted({r["gil_enabled"] for r in recs if "gil_enabled" in r}, key=str),
        "start_method": sorted({r["start_method"] for r in recs if r.get("start_method")}),
        "left_at_end": {k: v for k, v in left.items() if k != "processes"},
        "worker_stop": d.get("worker_stop"),
    }


def pattern(s: dict) -> str:
    """What the process fallback left behind in one job: accumulates | cleared | some left.

    `cleared`: no task process in any settled snapshot (whether or not the snapshot right after
    the call still caught one: under forkserver that is a race with the forkserver's reaping).
    """
    settled = [x["tasks"] for x in s["settled"]]
    if settled and all(n >= i + 1 for i, n in enumerate(settled)) and s["left_at_end"].get("alive", 0) >= len(settled):
        return "accumulates"
    return "some left" if any(settled) else "cleared"


def pairs(snaps: Iterable[dict]) -> str:
    return ", ".join(f"{x['children']}/{x['zombies']}" for x in snaps)


def span(values: Iterable, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    vals = [v * scale for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    if round(lo, digits) == round(hi, digits):
        return f"{lo:.{digits}f} {unit}"
    return f"{lo:.{digits}f}-{hi:.{digits}f} {unit}"


def _secs(value, digits: int = 2) -> str:
    return f"{value:.{digits}f} s" if isinstance(value, (int, float)) else "? s"


def _ms(value) -> str:
    return f"{value * 1000:.0f} ms" if isinstance(value, (int, float)) else "? ms"


def short_exc(name: str | None) -> str:
    return (name or "-").replace("timeout_decorator.timeout_decorator.", "timeout_decorator.")


def joined(items: Iterable[str | None]) -> str:
    items = list(dict.fromkeys("not run" if item is None else item for item in items))
    return ", ".join(items)


def unmeasured(reason: str, facts: dict | None = None, measured: list | None = None) -> dict:
    return {"verdict": UNMEASURED, "summary": reason, "why": reason, "measured": measured or [reason],
            "facts": facts or {}}


# --- how each job's query was sized ----------------------------------------------------------------


def job_sizing(d: dict) -> dict | None:
    """How a job's query was sized, from its own records: rows asked for (`auto` or a count), rows
    used, the query's measured speed on the job's interpreter, the seconds that speed predicts
    (and, for thread-stop, the GIL-holding builtin's own rate). None: nothing recorded."""
    spec = d.get("job") or {}
    if spec.get("kind") == "plain":
        if spec.get("experiment") != "thread-stop":
            return {"query": False, "note": "this experiment runs no DuckDB query"}
        r = d.get("result") or {}
        if stop_workload(spec) != "duckdb":
            return _workload_sizing(stop_workload(spec), r)
        cal = r.get("calibration")
        if not cal:
            return None
        spin = r.get("spin_calibration") or {}
        return {"query": True, "rows_requested": r.get("rows_requested"), "rows": [r.get("rows")],
                "rows_per_second": [round(cal["rows_per_second"])], "expected_seconds": [r.get("expected_seconds")],
                "target_seconds": r.get("query_seconds"), "source": [cal.get("source")],
                "builtin": {"items_per_second": spin.get("items_per_second"), "items": r.get("spin_items"),
                            "expected_seconds": r.get("spin_expected_seconds")}}
    recs = [r for r in d.get("records") or [] if r.get("calibration")]
    if not recs:
        return None
    return {"query": True, "rows_requested": recs[0].get("rows_requested"),
            "rows": sorted({r["rows"] for r in recs}),
            "rows_per_second": sorted({round(r["calibration"]["rows_per_second"]) for r in recs}),
            "expected_seconds": sorted({r.get("expected_seconds") for r in recs if r.get("expected_seconds") is not None}),
            "target_seconds": recs[0].get("query_seconds"),
            "source": sorted({r["calibration"].get("source", "measured") for r in recs})}


def _workload_sizing(workload: str, r: dict) -> dict | None:
    """job_sizing of a thread-stop job on another workload than DuckDB: its own calibration, in its own units
    (`query` False: the DuckDB speeds of the table's header leave it out)."""
    if r.get("import_error"):
        return {"query": False, "workload": workload, "note": f"{workload}: not imported ({r['import_error']})"}
    cal = r.get("calibration")
    if not cal:
        return None
    unit = r.get("unit") or cal.get("unit") or "units"
    asked = "auto" if r.get("rows_requested") == "auto" else f"{r.get('rows_requested')} (premise re-run)"
    return {"query": False, "workload": workload, "unit": unit, "rows_requested": r.get("rows_requested"),
            "rows": [r.get("rows")], "rows_per_second": [round(cal["rows_per_second"])],
            "expected_seconds": [r.get("expected_seconds")], "target_seconds": r.get("query_seconds"),
            "source": [cal.get("source")],
            "note": (f"{workload} ({cal.get('library') or r.get('library')}), size {asked}: "
                     f"{cal['rows_per_second'] / 1e6:.3g}M {unit}/s measured -> {r.get('rows') or 0:,} {unit}, "
                     f"{_secs(r.get('expected_seconds'))} expected")}


def describe_sizing(sz: dict | None) -> str:
    """`DUCKDB_ROWS=auto: 305M rows/s -> 3,050,000,000 rows, 10.00 s expected`."""
    if not sz:
        return "sizing not recorded"
    if not sz.get("query"):
        return sz.get("note", "no query")
    asked = "DUCKDB_ROWS=auto" if sz.get("rows_requested") == "auto" else f"DUCKDB_ROWS={sz.get('rows_requested')}"
    text = (f"{asked}: {span(sz['rows_per_second'], 'M rows/s', 1e-6, 0)} measured -> {_rows_text(sz['rows'])}, "
            f"{span(sz['expected_seconds'])} expected")
    b = sz.get("builtin")
    if b and b.get("items_per_second"):
        text += (f"; builtin {b['items_per_second'] / 1e6:.0f}M items/s -> {b['items']:,} items, "
                 f"{_secs(b['expected_seconds'])} expected")
    return text


def _rerun_note(d: dict) -> str:
    """`(first attempt: premise failed: ...; re-run with N rows)` for a job that ran twice."""
    first = d.get("premise_rerun")
    if not first:
        return ""
    sz = job_sizing(d) or {}
    return f" (first attempt: {PREMISE}: {first['reason']}; re-run with {_rows_text(sz.get('rows') or [])})"


# --- the claims -------------------------------------------------------------------------------------


def _is_process(spec: dict, interps: Iterable[str]) -> bool:
    return (spec.get("interp") in interps and bool(spec.get("start_method")) and spec.get("gil_off", True)
            and spec.get("task", "tasks.leak_demo") == "tasks.leak_demo")


def _process_jobs(data: dict, interps: Iterable[str]) -> list[tuple[str, dict]]:
    interps = tuple(interps)
    return [(j, d) for j, d in worker_jobs(data, strategy="process", pool="solo", max_tasks_per_child=None)
            if _is_process(d["job"], interps)]


def _process_gaps(data: dict, interps: Iterable[str], strategy: str = "process") -> list[tuple[str, str]]:
    interps = tuple(interps)
    return [(j, r) for j, r in gaps(data, "worker", strategy=strategy, pool="solo", max_tasks_per_child=None)
            if _is_process(_spec(data, j), interps)]


def _snapshot_counts(data: dict, interps: Iterable[str], method: str) -> Counter:
    """children/zombies right after the call, over every process and cleanup worker (taken before any cleanup)."""
    c: Counter = Counter()
    interps = tuple(interps)
    for strategy in PROCESS_STRATEGIES:
        for _, d in worker_jobs(data, strategy=strategy, pool="solo", start_method=method, max_tasks_per_child=None):
            if d["job"]["interp"] in interps and d["job"].get("gil_off", True):
                c.update(f"{x['children']}/{x['zombies']}" for x in series(d)["immediate"])
    return c


def claim1(data: dict) -> dict:
    jobs = _process_jobs(data, ("host", "gil"))
    found = _process_gaps(data, ("host", "gil"))
    if not jobs:
        return not_measured(data, found, "no GIL-build worker ran", "host", "gil")
    facts, measured, by_method = {}, [], {}
    for job_id, d in jobs:
        spec, s = d["job"], series(d)
        p = pattern(s)
        by_method.setdefault(spec["start_method"], []).append((spec["interp"], p, s))
        facts[job_id] = {"pattern": p, **{k: s[k] for k in ("outcomes", "exception_types", "immediate", "settled",
                                                              "cpu_after_deadline", "left_at_end", "worker_stop")}}
        measured.append(
            f"{label(data, spec['interp'], False)}, {spec['start_method']}: children/zombies right after the call "
            f"{pairs(s['immediate'])}, settled {pairs(s['settled'])}; task processes left at the end "
            f"{s['left_at_end'].get('alive', 0)} live ({s['left_at_end'].get('sigterm_caught', 0)} with a SIGTERM "
            f"handler, {s['left_at_end'].get('burning', 0)} using CPU), {s['left_at_end'].get('zombies', 0)} zombie; "
            f"CPU after the deadline {span(s['cpu_after_deadline'])} per iteration; worker stop: {s['worker_stop']}; "
            f"{describe_sizing(job_sizing(d))}{_rerun_note(d)}")
    parts, acc, trans = [], [], []
    for method in sorted(by_method, key=METHOD_ORDER.index):
        rows = by_method[method]
        who = joined(label(data, i) for i, _, _ in rows)
        kinds = {p for _, p, _ in rows}
        if kinds == {"accumulates"}:
            acc.append(method)
            settled = [x["live_tasks"] for x in rows[0][2]["settled"]]
            cpu = [c for _, _, s in rows for c in s["cpu_after_deadline"]]
            caught = sum(s["left_at_end"].get("sigterm_caught", 0) for _, _, s in rows)
            alive = sum(s["left_at_end"].get("alive", 0) for _, _, s in rows)
            parts.append(f"{method} ({who}): live task processes after each iteration {'/'.join(map(str, settled))}, "
                         f"0 zombies, {caught} of {alive} with a SIGTERM handler, CPU after the deadline "
                         f"{span(cpu)} per iteration (in the {data['settings']['SETTLE_SECONDS']:g} s settle window)")
        elif kinds == {"cleared"}:
            trans.append(method)
            counts = _snapshot_counts(data, ("host", "gil"), method)
            shown = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
            settled = sorted({f"{x['children']}/{x['zombies']}" for _, _, s in rows for x in s["settled"]})
            parts.append(f"{method} ({who}): right after the call {shown}; settled {'/'.join(settled)} every "
                         "iteration, nothing left")
        else:
            parts.append(f"{method} ({who}): " + ", ".join(f"{label(data, i)} {p}" for i, p, _ in rows))
    seen = sum(_snapshot_counts(data, ("host", "gil"), m)["3/1"] for m in by_method)
    facts.update({"accumulates_under": acc, "cleared_under": trans, "article_snapshot_seen": seen})
    kinds = {p for rows in by_method.values() for _, p, _ in rows}
    caught = facts["article_snapshot_seen"] or any(
        x["tasks"] for m in trans for _, _, s in by_method[m] for x in s["immediate"])
    if kinds == {"accumulates"}:
        verdict = HOLDS
    elif "accumulates" in kinds or (trans and caught):
        verdict = CAVEAT
    else:
        verdict = FAILS
    why = []
    if acc:
        why.append(f"under {' and '.join(acc)} the timed-out child is a copy of the worker with Celery's SIGTERM "
                   "handler, survives timeout-decorator's SIGTERM and keeps running the query, so live children "
                   "pile up, not zombies")
    if trans:
        why.append(f"under {' and '.join(trans)} (3.14's default) `children=3 zombies=1` is a snapshot taken before "
                   "the forkserver reaps the killed child, and nothing is left once it settles")
    if not why:
        why.append("the timed-out calls left task processes behind only some of the time")
    return with_gaps({"verdict": verdict, "summary": "; ".join(parts), "why": "; ".join(why) + ".",
                      "measured": measured, "facts": facts}, found)


def claim2(data: dict) -> dict:
    jobs = worker_jobs(data, strategy="process+cleanup", pool="solo")
    found = gaps(data, "worker", strategy="process+cleanup", pool="solo")
    if not jobs:
        return not_measured(data, found, "no cleanup worker ran", "host", "gil")
    facts, measured, by_method = {}, [], {}
    for job_id, d in jobs:
        spec, s = d["job"], series(d)
        method = spec["start_method"]
        zero = all(x["zombies"] == 0 and x["tasks"] == 0 for x in s["settled"]) and not s["left_at_end"].get("alive")
        base_id = f"{spec['interp']}-{method}-process"
        base = dict(worker_jobs(data, strategy="process", pool="solo", interp=spec["interp"], start_method=method,
                                max_tasks_per_child=None))
        base_d = base.get(base_id)
        base_gap = dict(gaps(data, "worker", strategy="process", pool="solo", interp=spec["interp"],
                             start_method=method, max_tasks_per_child=None)).get(base_id)
        without = pattern(series(base_d)) if base_d else UNMEASURED if base_gap else None
        if base_gap:  # the comparison without cleanup is named, not guessed
            found.append((base_id, base_gap))
        terminated = sum((c or {}).get("terminated", 0) for c in s["cleanup"])
        killed = sum((c or {}).get("killed", 0) for c in s["cleanup"])
        by_method.setdefault(method, []).append((spec["interp"], zero, without, s, terminated, killed))
        facts[job_id] = {"zero": zero, "settled": s["settled"], "cleanup": s["cleanup"], "left_at_end": s["left_at_end"],
                         "without_cleanup": without}
        measured.append(
            f"{label(data, spec['interp'], False)}, {method}: settled children/zombies {pairs(s['settled'])} "
            f"(roles: {joined(r for x in s['settled'] for r in x['roles']) or 'none'}); the reaper SIGTERMed "
            f"{terminated} and SIGKILLed {killed}; the same worker without cleanup: "
            f"{without + ' (' + base_gap + ')' if base_gap else without or 'not run'}; "
            f"{describe_sizing(job_sizing(d))}{_rerun_note(d)}")
    parts, needless = [], []
    for method in sorted(by_method, key=METHOD_ORDER.index):
        rows = by_method[method]
        who = joined(label(data, i) for i, *_ in rows)
        settled = sorted({f"{x['children']}/{x['zombies']}" for _, _, _, s, _, _ in rows for x in s["settled"]})
        roles = joined(r for _, _, _, s, _, _ in rows for x in s["settled"] for r in sorted(x["roles"]))
        term = sum(t for *_, t, _ in rows)
        kill = sum(k for *_, k in rows)
        withouts = {w for _, _, w, *_ in rows}
        if withouts == {"cleared"}:  # every comparison measured, and none needed the reaper
            needless.append(method)
        reaper = (f"{kill} of {term} SIGTERMed children needed SIGKILL" if term
                  else "the reaper found no task process left to kill")
        parts.append(f"{method} ({who}): settled {'/'.join(settled)}" + (f" ({roles})" if roles else "")
                     + f", {reaper}; without cleanup: {joined(withouts)}")
    all_zero = all(z for rows in by_method.values() for _, z, *_ in rows)
    facts.update({"all_zero": all_zero, "cleanup_not_needed_under": needless})
    verdict = FAILS if not all_zero else CAVEAT if needless else HOLDS
    why = ("the psutil reaper (SIGTERM, SIGKILL after the grace period) leaves no task process and no zombie" if all_zero
           else "task processes or zombies were still there after the reaper ran")
    if needless and all_zero:
        why += (", but under forkserver the forkserver had already reaped them without it, and `children=2` "
                "(resource tracker + forkserver) only exists under forkserver (fork: 0)")
    return with_gaps({"verdict": verdict, "summary": "; ".join(parts), "why": why + ".", "measured": measured,
                      "facts": facts}, list(dict(found).items()))


def claim3(data: dict) -> dict:
    jobs = worker_jobs(data, strategy="process", pool="solo", interp="nogil", max_tasks_per_child=None)
    found = gaps(data, "worker", strategy="process", pool="solo", interp="nogil", max_tasks_per_child=None)
    if not jobs:
        return not_measured(data, found, "no free-threaded worker ran", "nogil")
    facts, measured, parts, differ = {}, [], [], []
    gil_jobs = dict(worker_jobs(data, interp="gil", strategy="process", pool="solo", max_tasks_per_child=None))
    gil_gaps = dict(gaps(data, "worker", interp="gil", strategy="process", pool="solo", max_tasks_per_child=None))
    for job_id, d in jobs:
        spec, s = d["job"], series(d)
        p = pattern(s)
        method = spec.get("start_method") or joined(s["start_method"]) or "default"
        ref_id = f"gil-{method}-process"
        ref = gil_jobs.get(ref_id)
        ref_p = pattern(series(ref)) if ref else None
        if ref_id in gil_gaps:
            found.append((ref_id, gil_gaps[ref_id]))
        if ref_p not in (None, p):
            differ.append(job_id)
        gil_env = "0" if spec.get("gil_off") else "unset"
        gil_on = "/".join(str(g).lower() for g in s["gil_enabled"])
        facts[job_id] = {"pattern": p, "gil_build_pattern": ref_p, "gil_enabled": s["gil_enabled"],
                         "PYTHON_GIL": gil_env, "immediate": s["immediate"], "settled": s["settled"],
                         "left_at_end": s["left_at_end"]}
        measured.append(
            f"{label(data, 'nogil', False)}, {method}, PYTHON_GIL={gil_env} (GIL on after import duckdb: {gil_on}): "
            f"right after the call {pairs(s['immediate'])}, settled {pairs(s['settled'])}; left at the end "
            f"{s['left_at_end'].get('alive', 0)} live -> {p} (3.14 gil build: {ref_p or 'not measured'}); "
            f"{describe_sizing(job_sizing(d))}{_rerun_note(d)}")
        detail = ("live task processes " + "/".join(str(x["live_tasks"]) for x in s["settled"])
                  if p == "accumulates" else f"settled {joined(pairs([x]) for x in s['settled'])}")
        parts.append(f"{method}, PYTHON_GIL={gil_env} (GIL on: {gil_on}): {detail} -> {p}"
                     + (f" (gil build: {ref_p})" if ref_p else ""))
    patterns = {f["pattern"] for f in facts.values()}
    facts["differs_from_gil_build"] = differ
    # gone: the GIL build piles up where the free-threaded one does not (the claim fails there)
    gone = [j for j in differ if facts[j]["gil_build_pattern"] == "accumulates"]
    compared = any(f["gil_build_pattern"] for f in facts.values() if isinstance(f, dict))
    if gone:
        verdict = FAILS
        why = ("the GIL build leaves task processes behind where the free-threaded worker does not: "
               + joined(f"`{j}`" for j in gone))
    elif differ:
        verdict = CAVEAT
        why = ("the free-threaded worker left different processes from the GIL build in "
               + joined(f"`{j}`" for j in differ))
    elif "accumulates" not in patterns and found:
        # nothing piled up in what could be judged, and what was not judged may be where it does
        return with_gaps(unmeasured("not measured: no judged worker of either build left task processes behind "
                                    "(the start method where they pile up was not judged)", facts, measured),
                         list(dict(found).items()))
    elif "accumulates" not in patterns:
        verdict, why = FAILS, "the free-threaded worker left no task process behind"
    else:
        verdict = HOLDS
        why = ("the leak comes from timeout-decorator's process handling (SIGTERM, never joined), not from the GIL: "
               + ("with the GIL off the free-threaded worker leaves the same processes as the GIL build under each "
                  "start method" if compared else "with the GIL off the free-threaded worker still leaves them (no GIL "
                  "build measured in this run to compare with)"))
    return with_gaps({"verdict": verdict, "summary": "3.14t " + "; ".join(parts), "why": why + ".",
                      "measured": measured, "facts": facts}, list(dict(found).items()))


def claim4(data: dict) -> dict:
    runs = plain_jobs(data, "gil-import")
    found = [(j, r) for j, r in gaps(data, "plain", experiment="gil-import")]
    facts, measured = {}, []
    for job_id, d in runs:
        r = d["result"]
        facts[job_id] = {"build": r["build"], "PYTHON_GIL": r["PYTHON_GIL"], "gil_before": r["gil_before"],
                         "after": {x["module"]: x["gil_enabled"] for x in r["steps"]}, "warnings": r["warnings"]}
    nogil = [(j, d["result"]) for j, d in runs if d["job"]["interp"] == "nogil" and d["result"].get("steps")]
    nogil_gaps = [(j, r) for j, r in found if _spec(data, j).get("interp") == "nogil"]
    gil_builds = sorted({label(data, d["job"]["interp"]) for _, d in runs if d["job"]["interp"] != "nogil"})
    if not nogil:
        result = not_measured(data, nogil_gaps, "the free-threaded interpreter did not run", "nogil")
        result["facts"].update(facts)
        if gil_builds:
            result["measured"] = result["measured"] + [f"{', '.join(gil_builds)}: GIL always on"]
        return result
    flips, stays_off, warning = {}, {}, None
    for job_id, r in nogil:
        module = r["steps"][-1]["module"]
        after = r["steps"][-1]["gil_enabled"]
        before = r["steps"][-2]["gil_enabled"] if len(r["steps"]) > 1 else r["gil_before"]
        if r["PYTHON_GIL"] == "0":
            stays_off[module] = after is False
        else:
            flips[module] = before is False and after is True
            warning = warning or (r["warnings"][0] if r["warnings"] and module == "duckdb" else None)
        measured.append(
            f"{label(data, 'nogil', False)}, PYTHON_GIL={r['PYTHON_GIL'] or 'unset'}: GIL on at start: "
            f"{str(r['gil_before']).lower()}; after `import _decimal`: {str(r['steps'][0]['gil_enabled']).lower()}; "
            f"after `import {module}`: {str(after).lower()}" + (f" ({r['warnings'][0]})" if r["warnings"] else ""))
    if gil_builds:
        measured.append(f"{', '.join(gil_builds)}: GIL always on (nothing to re-enable)")
    facts.update({"flips": flips, "stays_off_with_PYTHON_GIL_0": stays_off, "warning": warning})
    if "duckdb" not in flips:  # the one measurement the claim is about
        result = not_measured(data, [g for g in nogil_gaps if "duckdb" in g[0] and "gil0" not in g[0]],
                              "`import duckdb` with PYTHON_GIL unset was not measured", "nogil")
        result["facts"].update(facts)
        result["measured"] = measured + result["measured"]
        return result
    summary = (f"3.14t, PYTHON_GIL unset: GIL off at start and after `import _decimal`, "
               f"{'on' if flips.get('duckdb') else 'still off'} after `import duckdb`"
               + (f" ({warning.split(':', 1)[0]}: \"{warning.split(':', 1)[1].strip().split('. ')[0]}.\")" if warning else ""))
    if "duckdb" in stays_off:
        summary += f"; PYTHON_GIL=0: {'off' if stays_off['duckdb'] else 'on'} after `import duckdb`"
    if "psutil" in flips:
        summary += f"; `import psutil`: GIL {'on' if flips['psutil'] else 'stays off'}"
    if flips.get("duckdb") and stays_off.get("duckdb"):
        verdict = CAVEAT
        why = ("duckdb's extension module has not declared that it can run without the GIL, so 3.14t turns the GIL "
               "on when importing it, unless PYTHON_GIL=0 (or -X gil=0) forces it off as the lab's nogil workers do")
    elif flips.get("duckdb"):
        verdict = HOLDS
        why = ("importing duckdb turns the GIL on" + (" (PYTHON_GIL=0 not measured)" if "duckdb" not in stays_off
                                                      else ", even with PYTHON_GIL=0"))
    else:
        verdict, why = FAILS, "importing duckdb left the GIL off"
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     found)


def _thread_stop_jobs(data: dict, workload: str) -> list[tuple[str, dict]]:
    """The thread-stop jobs of `workload` that gave a result whose premise held."""
    return [(j, d) for j, d in plain_jobs(data, "thread-stop") if stop_workload(d["job"]) == workload]


def _thread_stop_gaps(data: dict, workload: str) -> list[tuple[str, str]]:
    """The planned thread-stop jobs of `workload` that cannot be judged, with why."""
    return [(j, r) for j, r in gaps(data, "plain", experiment="thread-stop") if stop_workload(_spec(data, j)) == workload]


def _timer_blocked(sp: dict) -> bool:
    """The watchdog thread could not run until the call returned: it ran late by about the call's
    length, or (cancelled right after the call) not at all."""
    return bool((sp.get("watchdog_late") is None and sp.get("call_finished")) or (
        sp.get("watchdog_late") is not None and sp["watchdog_late"] > sp["deadline"] / 2 + 0.2))


def _claim5_duckdb(data: dict) -> dict:
    """Claim 5 on DuckDB: an async exception versus `con.interrupt()` (and, in records that have it, the builtin)."""
    runs = _thread_stop_jobs(data, "duckdb")
    found = _thread_stop_gaps(data, "duckdb")
    if not runs:
        return not_measured(data, found, "the thread experiment did not run")
    facts, measured, late, early, fast, blocked = {}, [], [], [], [], []
    for job_id, d in runs:
        r, interp = d["result"], d["job"]["interp"]
        a, i, sp = r["async_exc"], r["interrupt"], r.get("spin_async_exc")
        # Did the query run to its end? The CPU it used says so whatever the machine's load.
        ratio = a["cpu"] / r["query_alone_cpu"] if r.get("query_alone_cpu") else 0.0
        is_late = a["exception_type"] is not None and ratio >= 0.5
        is_early = a["exception_type"] is not None and ratio < 0.5  # landed with most of the query still to do
        is_fast = i["exception_type"] == "_duckdb.InterruptException" and i["overshoot"] < FAST
        # The GIL-holding builtin (records from before it was a workload of its own)
        is_blocked = sp is not None and _timer_blocked(sp)
        for cond, bucket in ((is_late, late), (is_early, early), (is_fast, fast), (is_blocked, blocked)):
            if cond:
                bucket.append(interp)
        facts[job_id] = {"build": r["build"], "gil_enabled": r["gil_enabled"], "query_alone": r["query_alone"],
                         "async_exc": a, "async_cpu_ratio": round(ratio, 2), "async_late": is_late, "interrupt": i,
                         "interrupt_fast": is_fast, "sizing": job_sizing(d)}
        spin_text = ""
        if sp is not None:
            facts[job_id].update({"spin_alone": r["spin_alone"], "spin": sp, "spin_blocks_watchdog": bool(is_blocked)})
            timer = (f"the timer thread ran {_secs(sp['watchdog_late'])} late" if sp["watchdog_late"] is not None
                     else "the timer thread never ran before the builtin returned")
            spin_text = (f"; a GIL-holding builtin ({_secs(r['spin_alone'])} alone, deadline {_secs(sp['deadline'])}): "
                         f"{timer}, the exception came after {_secs(sp['elapsed'])}")
        measured.append(
            f"{label(data, interp, False)} (GIL {'on' if r['gil_enabled'] else 'off'}), deadline {r['deadline']:g} s: "
            f"PyThreadState_SetAsyncExc from a timer thread ({_ms(a['watchdog_late'])} late) -> "
            f"{a['exception_type'] or 'no exception'} after {_secs(a['elapsed'])}, having used {_secs(a['cpu'])} CPU "
            f"(the query alone: {_secs(r['query_alone'])}, {_secs(r['query_alone_cpu'])} CPU); "
            f"`con.interrupt()` -> {i['exception_type'] or 'no exception'} {_ms(i['overshoot'])} after the deadline"
            f"{spin_text}; {describe_sizing(job_sizing(d))}{_rerun_note(d)}")
    n = len(runs)
    by = {d["job"]["interp"]: d["result"] for _, d in runs}
    spun = [i for i in by if by[i].get("spin_async_exc") is not None]
    deadlines = joined(f"{r['deadline']:g}" for r in by.values())
    blocked_late = [by[i]["spin_async_exc"]["watchdog_late"] for i in blocked]
    summary = (
        f"async exception from a timer thread (deadline {deadlines} s): landed after "
        f"{span(r['async_exc']['elapsed'] for r in by.values())}, once the query had used "
        f"{span([facts[j]['async_cpu_ratio'] * 100 for j in facts], '%', digits=0)} of the CPU it needs to finish, on "
        f"{joined(label(data, i) for i in late) or 'none'}"
        + (f", early (mid-query) on {joined(label(data, i) for i in early)}" if early else "")
        + f"; `con.interrupt()`: InterruptException {span((r['interrupt']['overshoot'] for r in by.values()), 'ms', 1000, 0)} "
        f"after the deadline on {joined(label(data, i) for i in fast) or 'none'}")
    if spun:
        summary += (f"; during a GIL-holding builtin the timer thread itself ran late (by {span(blocked_late)}) on "
                    f"{joined(label(data, i) for i in blocked) or 'none'}"
                    + (f", on time on {joined(label(data, i) for i in spun if i not in blocked)}"
                       if len(blocked) < len(spun) else ""))
    facts.update({"async_late": late, "async_early": early, "interrupt_fast": fast})
    if spun:
        facts["spin_blocks_watchdog"] = blocked
    if early:
        verdict = FAILS
        why = (f"an async exception from another thread stopped the DuckDB call early (having used "
               f"{span([facts[j]['async_cpu_ratio'] * 100 for j, d in runs if d['job']['interp'] in early], '%', digits=0)} "
               f"of its CPU) on {joined(label(data, i) for i in early)}")
    elif len(late) == n and len(fast) == n:
        verdict = CAVEAT
        why = ("no thread can stop an arbitrary C call (an async exception lands only when the call returns, GIL or "
               "not), but DuckDB releases the GIL and polls for interrupts, so a watchdog thread calling "
               "`con.interrupt()` stops the query in milliseconds without a process")
    elif len(late) == n:
        verdict, why = HOLDS, "neither an async exception nor `con.interrupt()` stopped the query on time"
    else:
        none = [i for i in by if i not in late and i not in early]
        return with_gaps(unmeasured(f"not measured: the async exception never arrived on "
                                    f"{joined(label(data, i) for i in none)}", facts, measured), found)
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     found)


def _claim5_workload(data: dict, workload: str) -> dict:
    """Claim 5 on one workload other than DuckDB: an async exception from a watchdog thread, and its own
    interrupt where it declares one (the lab's watchdog thread, strategy `interrupt`)."""
    declared = workload_axis.WORKLOADS[workload]
    name = INTERRUPT_NAMES.get(workload, "its interrupt")
    found = _thread_stop_gaps(data, workload)
    runs = []
    for job_id, d in _thread_stop_jobs(data, workload):
        r = d["result"]
        a = r.get("async_exc") or {}
        if r.get("import_error"):
            found.append((job_id, f"`import {declared.module}` fails on {label(data, d['job']['interp'])}: "
                                  f"{r['import_error']}"))
        elif a.get("exception_type") not in (None, *WATCHDOG_TIMEOUTS):
            found.append((job_id, f"the call failed: {a['exception_type']}"))
        else:
            runs.append((job_id, d))
    if not runs:
        if not found and any("workload" not in ((spec.get("params") or {})) for spec in planned(data).values()
                             if spec.get("experiment") == "thread-stop"):
            return unmeasured(f"not measured: this record has no {workload} measurement (claim 5 measured DuckDB "
                              "alone when it was made)", {"reason": "record without per-workload claim-5 data"})
        return not_measured(data, found, f"the {workload} thread experiment did not run")
    facts, measured = {}, []
    stopped, ran_on, blocked, fast, slow = [], [], [], [], []
    for job_id, d in runs:
        r, interp = d["result"], d["job"]["interp"]
        a, i, alone_cpu = r["async_exc"], r.get("interrupt"), r.get("query_alone_cpu") or 0.0
        ratio = a["cpu"] / alone_cpu if alone_cpu else 0.0
        # an exception that landed with most of the call's CPU still to use stopped it; None: the
        # watchdog could not run before the call returned (then it was cancelled)
        is_stopped = a["exception_type"] in WATCHDOG_TIMEOUTS and ratio < 0.5
        (stopped if is_stopped else ran_on).append(interp)
        sp = {**a, "deadline": r["deadline"]}
        if _timer_blocked(sp):
            blocked.append(interp)
        f = {"build": r["build"], "gil_enabled": r["gil_enabled"], "library": r.get("library"),
             "deadline": r["deadline"], "query_alone": r["query_alone"], "async_exc": a,
             "async_cpu_ratio": round(ratio, 2), "async_stops": is_stopped, "watchdog_blocked": interp in blocked,
             "sizing": job_sizing(d)}
        if i is not None:
            i_ratio = i["cpu"] / alone_cpu if alone_cpu else 0.0
            # stopped: ended as a timeout of its own kind, soon after the deadline, most of the call's work not done
            i_stops = i["outcome"] == "timeout" and i["overshoot"] < FAST and i_ratio < 0.5
            (fast if i_stops else slow).append(interp)
            f.update({"interrupt": i, "interrupt_cpu_ratio": round(i_ratio, 2), "interrupt_stops": i_stops})
            i_text = (f"{name} from the lab's watchdog thread (strategy `interrupt`) -> {i['outcome']} "
                      f"({short_exc(i['exception_type']) if i['exception_type'] else 'no exception'}) "
                      f"{_ms(i['overshoot'])} after the deadline, having used {_secs(i['cpu'])} CPU")
        else:
            i_text = f"no interrupt of its own (`{workload}` declares {', '.join(declared.stops) or 'no stop'})"
        facts[job_id] = f
        timer = (f"{_ms(a['watchdog_late'])} late" if a["watchdog_late"] is not None
                 else "never ran before the call returned")
        measured.append(
            f"{label(data, interp, False)} (GIL {'on' if r['gil_enabled'] else 'off'}), deadline "
            f"{_secs(r['deadline'])}: PyThreadState_SetAsyncExc from a watchdog thread ({timer}) -> "
            f"{a['exception_type'] or 'no exception'} after {_secs(a['elapsed'])}, having used {_secs(a['cpu'])} CPU "
            f"(the call alone: {_secs(r['query_alone'])}, {_secs(alone_cpu)} CPU); {i_text}; "
            f"{describe_sizing(job_sizing(d))}{_rerun_note(d)}")
    by = {d["job"]["interp"]: d["result"] for _, d in runs}
    where = lambda interps: joined(label(data, x) for x in interps) or "none"  # noqa: E731
    landed = [x for x in ran_on if by[x]["async_exc"]["exception_type"]]
    deadlines = span(r["deadline"] for r in by.values())
    summary = (f"async exception from a watchdog thread (deadline {deadlines}, a quarter into the call at most): "
               + (f"landed {span(by[x]['async_exc']['overshoot'] for x in landed)} after the deadline, once the call "
                  f"had used {span([facts[j]['async_cpu_ratio'] * 100 for j, d in runs if d['job']['interp'] in landed], '%', digits=0)} "
                  f"of the CPU it needs alone, on {where(landed)}" if landed else "")
               + ("; " if landed and len(landed) < len(ran_on) else "")
               + (f"never raised (the watchdog did not run before the call returned) on "
                  f"{where(x for x in ran_on if x not in landed)}" if len(landed) < len(ran_on) else "")
               + (f"; stopped mid-call on {where(stopped)}" if stopped else ""))
    if blocked:
        summary += (f"; the watchdog thread itself ran late (by {span(by[x]['async_exc']['watchdog_late'] for x in blocked)}"
                    f") on {where(blocked)}, the call holding the GIL"
                    + (f", on time on {where(x for x in by if x not in blocked)}" if len(blocked) < len(by) else ""))
    if "interrupt" in declared.stops:
        if fast:
            ex = joined(short_exc(by[x]["interrupt"]["exception_type"]) for x in fast)
            summary += (f"; {name} (watchdog thread): {ex} "
                        f"{span((by[x]['interrupt']['overshoot'] for x in fast), 'ms', 1000, 0)} after the deadline on "
                        f"{where(fast)}")
        if slow:
            summary += (f"; {name} (watchdog thread): did not stop it on {where(slow)} (control back "
                        f"{span(by[x]['interrupt']['overshoot'] for x in slow)} after the deadline)")
    else:
        summary += "; no interrupt of its own"
    facts.update({"async_stops": stopped, "async_late": ran_on, "watchdog_blocked": blocked, "interrupt_fast": fast,
                  "interrupt_slow": slow, "interrupt_declared": "interrupt" in declared.stops})
    gil = f"; while it holds the GIL on {where(blocked)} the watchdog thread cannot even run" if blocked else ""
    if stopped:
        verdict = FAILS
        why = (f"an async exception from a watchdog thread stopped the {workload} call mid-call on {where(stopped)}")
    elif fast:
        verdict = CAVEAT
        why = (f"no thread can stop the {workload} call by raising in it (the async exception lands only when the "
               f"call returns, GIL or not{gil}), but its own interrupt, {name} from a watchdog thread, stops it "
               f"within milliseconds without a process" + (f" (not on {where(slow)})" if slow else ""))
    elif "interrupt" in declared.stops:
        verdict = HOLDS
        why = (f"the async exception lands only when the {workload} call returns (GIL or not{gil}), and its interrupt, "
               f"{name}, was handled only when the call returned too: only a process stops it")
    else:
        verdict = HOLDS
        why = (f"the async exception lands only when the {workload} call returns (GIL or not{gil}), and {workload} has "
               "no interrupt of its own: only a process stops it")
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     found)


def claim5(data: dict) -> dict:
    """Claim 5, one verdict per workload (`workloads`, DuckDB first) and one over them all: it holds where no
    thread stops the call, with a caveat where the library's own interrupt does, and fails where an async
    exception did."""
    rows = {w: (_claim5_duckdb(data) if w == "duckdb" else _claim5_workload(data, w)) for w in STOP_WORKLOADS}
    judged = {rows[w]["verdict"] for w in rows if rows[w]["verdict"] != UNMEASURED}
    if not judged:
        verdict = UNMEASURED
    elif FAILS in judged:
        verdict = FAILS
    elif judged == {HOLDS}:
        verdict = HOLDS
    else:
        verdict = CAVEAT
    facts = dict(rows["duckdb"]["facts"])  # DuckDB's, as before there were other workloads
    lost = {j: why for w in rows for j, why in (rows[w]["facts"].get("not_measured") or {}).items()}
    if lost:
        facts["not_measured"] = lost
    facts["workloads"] = {w: rows[w]["verdict"] for w in rows}
    return {"verdict": verdict,
            "summary": "; ".join(f"`{w}`: " + ("" if rows[w]["verdict"] == UNMEASURED else f"{rows[w]['verdict']}: ")
                                 + rows[w]["summary"] for w in rows),
            "why": " ".join(f"`{w}`: {rows[w]['why']}" for w in rows),
            "measured": [f"`{w}`: {m}" for w in rows for m in rows[w]["measured"]],
            "facts": facts, "workloads": rows}


def claim6(data: dict) -> dict:
    jobs = worker_jobs(data, strategy="process", pool="prefork", task="tasks.leak_demo", max_tasks_per_child=None)
    found = gaps(data, "worker", strategy="process", pool="prefork", task="tasks.leak_demo", max_tasks_per_child=None)
    if not jobs:
        return not_measured(data, found, "no prefork worker ran")
    facts, measured, fails, solo_ok, where = {}, [], [], [], []
    # The solo side only has to show that the fallback can start there: a query that ended before its
    # deadline shows that as well as a timeout (premise=False).
    solo_all = dict(worker_jobs(data, premise=False, strategy="process", pool="solo", max_tasks_per_child=None))
    solo_gaps = dict(gaps(data, "worker", strategy="process", pool="solo", max_tasks_per_child=None))
    for job_id, d in jobs:
        spec, s = d["job"], series(d)
        refused = (all(o == "error" for o in s["outcomes"]) and s["exception_types"] == ["AssertionError"]
                   and any(DAEMONIC in m for m in s["exception_messages"]))
        solo_id = f"{spec['interp']}-{spec['start_method']}-process"
        solo = solo_all.get(solo_id)
        ss = series(solo) if solo else None
        runs_in_solo = bool(ss) and all(o in ("timeout", "ok") for o in ss["outcomes"])
        if not solo and solo_id in solo_gaps:
            found.append((solo_id, solo_gaps[solo_id]))
        (fails if refused else []).append(job_id)
        (solo_ok if runs_in_solo else []).append(job_id)
        where.append(f"{label(data, spec['interp'])} {spec['start_method']}")
        facts[job_id] = {"outcomes": s["outcomes"], "exception_types": s["exception_types"],
                         "exception_messages": s["exception_messages"], "refused": refused,
                         "solo_outcomes": ss["outcomes"] if ss else None,
                         "solo_exception_types": ss["exception_types"] if ss else None}
        measured.append(
            f"{label(data, spec['interp'], False)}, {spec['start_method']}: prefork -> {', '.join(s['outcomes'])} "
            f"({'; '.join(s['exception_types'])}: {'; '.join(s['exception_messages'])}); solo -> "
            + (f"{', '.join(ss['outcomes'])} ({short_exc(joined(ss['exception_types'])) if ss['exception_types'] else 'no exception'})"
               if ss else "not measured"))
    solo_outcomes = {o for f in facts.values() for o in (f["solo_outcomes"] or [])}
    solo_excs = joined(short_exc(e) for f in facts.values() for e in (f["solo_exception_types"] or []))
    ran = ("ran it and timed out" if solo_outcomes == {"timeout"} else
           "ran it (" + joined(sorted(solo_outcomes)) + ")")
    summary = (f"prefork ({', '.join(where)}): {len(fails)} of {len(jobs)} workers refused every task with "
               f"AssertionError: {DAEMONIC}; solo: {len(solo_ok)} of {len(jobs)} {ran}"
               + (f" ({solo_excs})" if solo_excs else ""))
    measured_solo = sum(1 for f in facts.values() if f["solo_outcomes"] is not None)
    refused = ("billiard makes each (daemonic) prefork pool process multiprocessing's current process, and "
               "`Process.start()` refuses children of a daemon under any start method")
    if not fails:
        verdict, why = FAILS, "the prefork pool ran the fallback"
    elif len(fails) == len(jobs) and measured_solo == 0:
        return with_gaps(unmeasured(f"not measured: the solo pool ({refused}, but no solo worker could be judged)",
                                    facts, measured), list(dict(found).items()))
    elif len(fails) == len(jobs) and len(solo_ok) == measured_solo:
        verdict = HOLDS  # every solo worker that could be judged ran it; the others are named below
        why = refused + ", while the solo pool runs the task in the worker's main process"
    else:
        verdict = CAVEAT
        why = refused + (" in some workers only" if len(fails) < len(jobs) else "") + (
            ", and the solo pool failed to run it in some" if len(solo_ok) < measured_solo else "")
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     list(dict(found).items()))


def claim7(data: dict) -> dict:
    runs = plain_jobs(data, "pickling")
    found = gaps(data, "plain", experiment="pickling")
    if not runs:
        return not_measured(data, found, "the pickling experiment did not run")
    facts, measured, table = {}, [], {}
    for job_id, d in runs:
        r, interp = d["result"], d["job"]["interp"]
        for x in r["results"]:
            table[(interp, x["start_method"], x["variant"])] = x
        facts[job_id] = {"python": r["python"], "default_start_method": r["default_start_method"],
                         "results": {f"{x['start_method']}/{x['variant']}": [x["outcome"], x["exception_type"]]
                                     for x in r["results"]}}
        for method in sorted({x["start_method"] for x in r["results"]}, key=METHOD_ORDER.index):
            cells = []
            for x in (x for x in r["results"] if x["start_method"] == method):
                what = "ok" if x["outcome"] == "ok" else short_exc(x["exception_type"]).split(".")[-1]
                cells.append(f"{x['variant']} {what}" + (f" after {x['elapsed']:.1f} s" if x["outcome"] == "timeout" else ""))
            default = " (its default)" if method == r["default_start_method"] else ""
            measured.append(f"{label(data, interp, False)}, {method}{default}: " + ", ".join(cells))

    def result(interp, method, variant):
        return table.get((interp, method, variant)) or {}

    def exc(interps, method, variant):
        by_name: dict = {}
        for i in interps:
            if result(i, method, variant):
                name = short_exc(result(i, method, variant).get("exception_type")).split(".")[-1]
                by_name.setdefault(name, []).append(label(data, i))
        if len(by_name) == 1:
            return next(iter(by_name))
        return ", ".join(f"{name} ({', '.join(who)})" for name, who in by_name.items())

    py314 = [i for i in ("gil", "nogil") if result(i, "forkserver", "top_level")]
    interps = [i for i in ("host", "gil", "nogil") if result(i, "forkserver", "top_level")]
    if not py314:
        lost = [(j, r) for j, r in found if _spec(data, j).get("interp") in ("gil", "nogil")]
        out = not_measured(data, lost, "no CPython 3.14 interpreter ran the experiment", "gil", "nogil")
        out["facts"].update(facts)
        out["measured"] = measured + out["measured"]
        return out
    top_ok = all(result(i, "forkserver", "top_level").get("outcome") == "ok" for i in py314)
    local_fail = all(result(i, "forkserver", v).get("outcome") == "error" for i in py314 for v in ("nested", "lambda"))
    decorated_fails = all(result(i, "forkserver", "decorated_in_place").get("outcome") == "error" for i in py314)
    parent_only = [result(i, "forkserver", "parent_only") for i in py314]
    parent_only_timeout = all(x.get("outcome") == "timeout" for x in parent_only)
    fork_ok = all(x["outcome"] == "ok" for (_, m, _), x in table.items() if m == "fork")
    py311_same = result("host", "forkserver", "nested").get("outcome") == "error"
    facts.update({"top_level_ok": top_ok, "local_fails": local_fail, "decorated_in_place_fails": decorated_fails,
                  "parent_only_times_out": parent_only_timeout, "fork_all_ok": fork_ok, "py311_forkserver_same": py311_same})
    methods = joined(m for (_, m, _) in sorted(table, key=lambda k: METHOD_ORDER.index(k[1])) if m != "fork")
    summary = (f"{methods} ({joined(label(data, i) for i in interps)}): top-level function wrapped at call time "
               f"{'ok' if top_ok else exc(interps, 'forkserver', 'top_level')}; "
               f"`@timeout` on a top-level def -> {exc(interps, 'forkserver', 'decorated_in_place')}; nested function "
               f"-> {exc(interps, 'forkserver', 'nested')}; lambda -> {exc(interps, 'forkserver', 'lambda')}; a "
               f"function the child cannot import -> "
               + (f"TimeoutError after the full {span([x.get('elapsed') for x in parent_only], digits=1)}"
                  if parent_only_timeout else exc(interps, "forkserver", "parent_only"))
               + f"; fork: {'every variant ok' if fork_ok else 'not all ok'}")
    if not (top_ok and local_fail):
        verdict = FAILS
        why = ("under forkserver " + ("a top-level function failed too" if not top_ok
                                      else "a nested function or a lambda went through"))
    else:
        verdict = CAVEAT if decorated_fails or parent_only_timeout or py311_same else HOLDS
        why = ("it is the start method, not the version: forkserver and spawn pickle the target by name, so besides "
               "nested functions and lambdas the usual `@timeout(...)` decorator on a top-level def fails too (wrap at "
               "call time instead, as app/strategies.py does), and a function the child cannot import is misreported "
               "as a timeout")
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     found)


def claim8(data: dict) -> dict:
    """Each mitigation: works, works in prefork only, does not work, or not measured (never guessed)."""
    sub, parts, measured, facts, lost = {}, [], [], {}, []

    # reaping: the verdict of claim 2, when it could be judged
    c2 = claim2(data)
    reaped = sum((c or {}).get("terminated", 0) + (c or {}).get("killed", 0)
                 for j, f in c2["facts"].items() if isinstance(f, dict) and "cleanup" in f for c in f["cleanup"])
    if c2["verdict"] != UNMEASURED and not c2["facts"].get("all_zero", False):
        sub["reaping"] = "does not work"
        parts.append("reaping: leftovers remain (row 2)")
    elif c2["verdict"] != UNMEASURED and reaped:
        sub["reaping"] = "works"
        parts.append("reaping: 0 task processes and 0 zombies after every iteration (row 2)")
    elif c2["verdict"] != UNMEASURED:  # nothing was left to reap where it was judged: it proved nothing
        sub["reaping"] = UNMEASURED
        parts.append("reaping: not measured (the reaper found nothing to reap in the workers judged)")
    elif any(s.get("strategy") == "process+cleanup" for s in planned(data).values()):
        sub["reaping"] = UNMEASURED
        parts.append(f"reaping: not measured ({c2['summary']})")
        lost += list(c2["facts"].get("not_measured", {}).items())

    # Celery time limits: prefork enforces them; solo ignores them (if the query outlasts them)
    tl = worker_jobs(data, strategy="prefork-time-limit")
    tl_gaps = gaps(data, "worker", strategy="prefork-time-limit")
    lost += tl_gaps
    if tl or tl_gaps:
        pre, solo = [], []
        for job_id, d in tl:
            spec, s = d["job"], series(d)
            facts[job_id] = {"pool": spec["pool"], "outcomes": s["outcomes"], "exception_types": s["exception_types"],
                             "exception_messages": s["exception_messages"], "elapsed": s["elapsed"]}
            (pre if spec["pool"] == "prefork" else solo).append((spec, s))
            measured.append(f"time limits, {spec['pool']} pool, {label(data, spec['interp'], False)}: "
                            f"{', '.join(s['outcomes'])} ({', '.join(s['exception_messages']) or 'no exception'}) "
                            f"after {span(s['elapsed'])}; {describe_sizing(job_sizing(d))}{_rerun_note(d)}")
        pre_ok = bool(pre) and all(o == "timeout" for _, s in pre for o in s["outcomes"])
        solo_ignored = bool(solo) and all(o == "ok" for _, s in solo for o in s["outcomes"])
        text = []
        if pre:
            text.append(f"prefork: soft limit -> {joined(e for _, s in pre for e in s['exception_types'])} "
                        f"\"{joined(m for _, s in pre for m in s['exception_messages'])}\" after "
                        f"{span(e for _, s in pre for e in s['elapsed'])}")
        else:
            text.append("prefork: not measured")
        if solo:
            text.append(f"solo: ignored, the query ran to its end ({span(e for _, s in solo for e in s['elapsed'])})"
                        if solo_ignored else f"solo: {joined(o for _, s in solo for o in s['outcomes'])}")
        else:
            text.append("solo: not measured")
        parts.append("Celery time limits: " + ", ".join(text))
        if not pre:
            sub["Celery time limits"] = UNMEASURED
        elif not pre_ok:
            sub["Celery time limits"] = "does not work"
        elif not solo:
            sub["Celery time limits"] = "works in prefork (solo not measured)"
        else:
            sub["Celery time limits"] = "works in prefork only" if solo_ignored else "works"

    # --max-tasks-per-child=1: the solo pool (the one that can run the fallback) decides
    m = worker_jobs(data, max_tasks_per_child=1)
    ctrl = worker_jobs(data, task="claims.leak_demo_children_allowed", max_tasks_per_child=None)
    m_gaps = gaps(data, "worker", max_tasks_per_child=1)
    lost += m_gaps + gaps(data, "worker", task="claims.leak_demo_children_allowed", max_tasks_per_child=None)
    if m or m_gaps:
        solo_ignored, plain_refused, allowed, control = None, None, {}, {}
        for job_id, d in m + ctrl:
            spec, s = d["job"], series(d)
            recycled = len(s["pids"]) > 1 and len(set(s["pids"])) == len(s["pids"])
            left = s["left_at_end"]
            facts[job_id] = {"pool": spec["pool"], "task": spec["task"], "start_method": spec["start_method"],
                             "mtpc": spec["max_tasks_per_child"], "outcomes": s["outcomes"],
                             "exception_types": s["exception_types"], "pids": s["pids"], "recycled": recycled,
                             "settled": s["settled"], "left_at_end": left}
            flag = "daemon flag cleared" if spec["task"] != "tasks.leak_demo" else "plain task"
            measured.append(
                f"--max-tasks-per-child={spec['max_tasks_per_child'] or 'unset'}, {spec['pool']} pool, {flag}, "
                f"{label(data, spec['interp'], False)} {spec['start_method'] or '(default start method)'}: "
                f"{', '.join(s['outcomes'])}{' (' + joined(short_exc(e) for e in s['exception_types']) + ')' if s['exception_types'] else ''}; "
                f"pool process {'replaced after every task' if recycled else 'kept'}; settled {pairs(s['settled'])}; "
                f"left at the end: {left.get('alive', 0)} live, {left.get('zombies', 0)} zombie")
            if spec["max_tasks_per_child"] != 1:  # the control: children allowed, no recycling
                control.setdefault(spec["start_method"], []).append(left.get("zombies", 0))
                continue
            if spec["pool"] == "solo":
                # the same process kept, and what its calls left is still there: running or, once a
                # short query finished, a zombie nobody waited for
                ignored = not recycled and left.get("alive", 0) + left.get("zombies", 0) >= len(s["pids"])
                solo_ignored = ignored if solo_ignored is None else solo_ignored and ignored
            elif spec["task"] == "tasks.leak_demo":
                refused = s["exception_types"] == ["AssertionError"]
                plain_refused = refused if plain_refused is None else plain_refused and refused
            else:
                ok = all(o == "timeout" for o in s["outcomes"])
                clean = ok and recycled and not left.get("alive") and not left.get("zombies")
                allowed.setdefault(spec["start_method"], []).append(
                    "reaped" if clean else joined(f"{short_exc(e).split('.')[-1]}" for e in s["exception_types"])
                    + (f" \"{s['exception_messages'][0][:100]}\"" if s["exception_messages"] else "") or "left")
        facts.update({"mtpc_solo_ignored": solo_ignored, "mtpc_prefork_plain_refused": plain_refused,
                      "mtpc_prefork_children_allowed": allowed, "prefork_children_allowed_without_mtpc_left": control})

        def without(method):
            if method not in control:
                return ""
            counts = sorted(set(control[method]))
            return f" (without the option: {'/'.join(map(str, counts))} zombie left per worker at the end)"

        solo_gap = [(j, r) for j, r in m_gaps if _spec(data, j).get("pool") == "solo"]
        text = []
        if solo_ignored is not None:
            text.append("solo: ignored (same process, leftovers pile up)" if solo_ignored else "solo: recycles")
        else:
            text.append("solo: not measured" + (f" ({gap_text(solo_gap)})" if solo_gap else " (no solo job planned)"))
        if plain_refused is not None:
            text.append("prefork: the fallback cannot start (AssertionError)" if plain_refused else "prefork: starts")
        if allowed:
            text.append("prefork with the daemon flag cleared: " + ", ".join(
                f"{method} -> {'killed children reaped when the pool process is replaced' if set(v) == {'reaped'} else joined(v)}"
                f"{without(method)}" for method, v in sorted(allowed.items())))
        parts.append("`--max-tasks-per-child=1`: " + "; ".join(text))
        # "works" only when the solo job was measured and it recycled: a missing job is not a success
        sub["--max-tasks-per-child"] = (UNMEASURED if solo_ignored is None else
                                        "does not work" if solo_ignored else "works")

    # con.interrupt() from a watchdog thread
    it = worker_jobs(data, strategy="interrupt")
    it_gaps = gaps(data, "worker", strategy="interrupt")
    lost += it_gaps
    if it:
        ok, over, who = True, [], []
        for job_id, d in it:
            s = series(d)
            good = (all(o == "timeout" for o in s["outcomes"]) and s["exception_types"] == ["_duckdb.InterruptException"]
                    and all(x["tasks"] == 0 for x in s["settled"]))
            ok = ok and good
            over += s["overshoot"]
            who.append(label(data, d["job"]["interp"]))
            facts[job_id] = {"outcomes": s["outcomes"], "exception_types": s["exception_types"],
                             "overshoot": s["overshoot"], "settled": s["settled"], "cpu": s["cpu_after_deadline"]}
            measured.append(f"`con.interrupt()` from a watchdog thread, {label(data, d['job']['interp'], False)}: "
                            f"{', '.join(s['outcomes'])} ({', '.join(s['exception_types'])}), overshoot "
                            f"{span(s['overshoot'], 'ms', 1000, 0)}, children/zombies {pairs(s['settled'])}, CPU after "
                            f"the deadline {span(s['cpu_after_deadline'])}; {describe_sizing(job_sizing(d))}"
                            f"{_rerun_note(d)}")
        sub["con.interrupt()"] = "works" if ok else "does not work"
        parts.append(f"`con.interrupt()` ({joined(who)}): InterruptException {span(over, 'ms', 1000, 0)} after the "
                     f"deadline, no process" if ok else "`con.interrupt()`: did not stop the query cleanly")
    elif it_gaps:
        sub["con.interrupt()"] = UNMEASURED
        parts.append("`con.interrupt()`: not measured")
    facts["mitigations"] = sub
    lost = list(dict(lost).items())
    if not sub or all(v == UNMEASURED for v in sub.values()):
        out = not_measured(data, lost, "no mitigation was run")
        out["facts"].update(facts)
        out["measured"] = measured + out["measured"]
        return out
    unknown = [k for k, v in sub.items() if "not measured" in v]
    if any(v.startswith("does not") for v in sub.values()):
        verdict = FAILS
    elif unknown:
        verdict = UNMEASURED
    elif any(v != "works" for v in sub.values()):
        verdict = CAVEAT
    else:
        verdict = HOLDS
    working = [k for k, v in sub.items() if v == "works"]
    why = (f"{' and '.join(working) or 'none'} work everywhere measured"
           + (", Celery time limits only in the prefork pool" if sub.get("Celery time limits", "").startswith("works in prefork") else "")
           + (", but `--max-tasks-per-child` does nothing for the solo pool the fallback needs (prefork cannot run "
              "it without clearing the daemon flag)" if sub.get("--max-tasks-per-child") == "does not work" else "")
           + (f"; not measured: {', '.join(unknown)}" if unknown else ""))
    return with_gaps({"verdict": verdict, "summary": "; ".join(parts), "why": why + ".", "measured": measured,
                      "facts": facts}, lost)


CLAIM_FUNCTIONS = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5, 6: claim6, 7: claim7, 8: claim8}


def verdicts(data: dict, settings) -> dict:
    """Every selected claim's verdict. A bug in one rule costs that row only (and the run's exit status)."""
    import traceback

    out = {}
    for n in settings.claims:
        try:
            result = CLAIM_FUNCTIONS[n](data)
        except Exception as exc:  # noqa: BLE001 - reported in the row, on stderr, and by the exit status
            traceback.print_exc()
            result = unmeasured(f"the rule for this claim failed: {type(exc).__name__}: {exc}")
            result["report_error"] = True
        result.update({"claim": n, "statement": STATEMENTS[n], "reproduce": settings.reproduce(n)})
        out[str(n)] = result
    return out


# --- markdown ----------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def sizing_by_interp(data: dict) -> dict[str, dict]:
    """Per interpreter, over its jobs with a query: measured speeds, rows used, seconds expected."""
    out: dict[str, dict] = {}
    for _, d in _ordered(data):
        sz = d.get("sizing") or job_sizing(d)
        if not sz or not sz.get("query"):
            continue
        o = out.setdefault(d["job"]["interp"], {"rows_per_second": [], "rows": [], "expected_seconds": []})
        for k in o:
            o[k] += [v for v in sz.get(k) or [] if v is not None]
    return out


def workload_text(data: dict) -> str:
    """The workload and how it was sized: DUCKDB_ROWS=auto (targets, measured speeds) or an explicit count."""
    st = data["settings"]
    rows = st.get("DUCKDB_ROWS")
    per = sizing_by_interp(data)
    speeds = ", ".join(f"{label(data, i)} {span(v['rows_per_second'], 'M', 1e-6, 0)}" for i, v in per.items())
    if rows == "auto" or rows is None:
        targets = []
        if st.get("QUERY_SECONDS"):
            targets.append(f"{st['QUERY_SECONDS']:g} s for the Celery workers")
        if st.get("THREAD_STOP_SECONDS"):
            targets.append(f"{st['THREAD_STOP_SECONDS']:g} s for the thread-stop experiment")
        how = ("`n` sized by each job on its own interpreter from the query's speed measured there just before "
               "(DUCKDB_ROWS=auto, app/measure/calibrate.py)" + (f" to run {' and '.join(targets)}" if targets else ""))
    else:
        how = f"`n` = {int(rows):_} (DUCKDB_ROWS)"
    return (f"workload `{defaults.DUCKDB_SQL.replace('?', 'n')}` on one DuckDB thread, {how}; rows/s measured: "
            f"{speeds or 'no query ran'} (each job's size below)")


def per_workload(c: dict) -> list[tuple[str, dict]]:
    """A claim's verdicts per workload (claim 5), in app/kernel/workload_axis.py's order (claims.json sorts its keys)."""
    per = c.get("workloads") or {}
    order = {w: k for k, w in enumerate(STOP_WORKLOADS)}
    return sorted(per.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def _table_rows(c: dict) -> list[tuple[str, dict]]:
    """A claim's rows in the table: (claim text, verdict row); one per workload for a claim judged per workload."""
    if not c.get("workloads"):
        return [(c["statement"], c)]
    out = []
    for k, (w, row) in enumerate(per_workload(c)):
        what = workload_axis.WORKLOADS[w].summary if w in workload_axis.WORKLOADS else w
        out.append((f"{c['statement']} Workload `{w}`: {what}." if k == 0 else
                    f"The same, workload `{w}`: {what}.", row))
    return out


def markdown(data: dict, settings) -> str:
    st = data["settings"]
    versions = data["interpreters"]["versions"]
    interp_text = "; ".join(
        f"{label(data, i, False)}: default start method {v.get('default_start_method', '?')}"
        for i, v in sorted(versions.items(), key=lambda kv: INTERPS.index(kv[0])))
    duckdb = joined(v["duckdb"] for v in versions.values() if v.get("duckdb")) or joined(
        (d.get("result") or {}).get("duckdb") for _, d in _ordered(data)  # a run without Celery workers (claim 5)
        if d.get("job", {}).get("experiment") == "thread-stop" and (d.get("result") or {}).get("duckdb"))
    missing = data["interpreters"]["missing"]
    lines = [
        "# The article's claims, measured",
        "",
        f"Generated by `{settings.reproduce()}` (run `{data['run_id']}`, {data['generated']}, {data['seconds']:.0f} s) "
        f"on a {data['host']['cpus']}-CPU {data['host']['machine']} machine, shared and noisy: times are indicative, "
        "the verdicts rest on counts, process states and exception types.",
        "",
        f"- Interpreters: {interp_text or 'none'}" + (f". Not measured: {'; '.join(missing.values())}" if missing else ""),
        f"- duckdb {duckdb or '?'}, timeout-decorator, celery and psutil as pinned in requirements/lab.txt; "
        f"{workload_text(data)}; timeout {st['DUCKDB_TIMEOUT']:g} s, {st['ITERATIONS']} iterations per Celery worker, "
        f"second snapshot {st['SETTLE_SECONDS']:g} s after the first; broker: {data['broker']}.",
        "- `a/b` = children/zombies of the worker: right after the timed-out call, and \"settled\" after the settle "
        "time. 3.11 = the host's python3 (fork by default), 3.14 = CPython 3.14 with the GIL, 3.14t = free-threaded "
        "(both forkserver by default).",
        "",
    ]
    claims = sorted(data["claims"].values(), key=lambda c: c["claim"])
    rows = []
    for c in claims:
        # a claim judged per workload (claim 5): one row per workload, each with its own verdict
        for claim_text, row in _table_rows(c):
            rows.append([c["claim"], _cell(claim_text), f"**{row['verdict']}**", _cell(row["summary"]),
                         _cell(row["why"]), f"`{c['reproduce']}`"])
    lines.append(tables.render(["#", "Claim", "Verdict", "Measured here", "Why", "Reproduce"], rows, markdown=True))
    lines += ["", "## Details", ""]
    for c in claims:
        per = per_workload(c)
        lines.append(f"{c['claim']}. **{c['verdict']}**: {c['statement']}"
                     + (" Per workload: " + ", ".join(f"`{w}` {r['verdict']}" for w, r in per) + "." if per else ""))
        lines += [f"   - {x}" for x in c["measured"]]
    lines += ["", "How each job's query was sized (on the job's own interpreter):", ""]
    for job_id, d in _ordered(data):
        lines.append(f"- `{job_id}`: {describe_sizing(d.get('sizing') or job_sizing(d))}{_rerun_note(d)}")
    failed = [j for j, d in data["jobs"].items() if d.get("error")]
    if failed:
        lines += ["", "Jobs that failed (the claims above are judged without them): "
                  + "; ".join(f"`{j}`: {_first_line(data['jobs'][j]['error'])}" for j in failed)]
    absent = [j for j in planned(data) if j not in data["jobs"]]
    if absent:
        lines += ["", "Jobs planned but not recorded in claims.json: " + ", ".join(f"`{j}`" for j in absent)]
    premise = [(j, premise_failure(d)) for j, d in _ordered(data) if premise_failure(d)]
    if premise:
        lines += ["", "Jobs whose premise failed (the query ended before its deadline; not judged): "
                  + "; ".join(f"`{j}`: {r}" for j, r in premise)]
    lines += ["", "Every record: `claims.json` next to this file; every worker's and experiment's output: `logs/`."]
    return "\n".join(lines) + "\n"
