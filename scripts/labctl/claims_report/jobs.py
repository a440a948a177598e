"""Reading claims.json: which jobs were planned, which can be judged, and one worker job's numbers.

No rule turns missing data into a reason. A job whose record is missing from claims.json, that
failed (its error), or that lacks an iteration's record is "not measured" with that reason
(`job_problem`); a job whose premise failed (its query ended before its deadline, so nothing was
timed out) is "premise failed" with the numbers (`premise_failure`), never evidence for or against
a claim. `worker_jobs` and `plain_jobs` give the jobs a rule can judge, `gaps` the others and why.
"""

from __future__ import annotations

from app.kernel import axes

from .helpers import INTERPS, METHOD_ORDER, PREMISE, PROCESS_STRATEGIES, first_line, joined, rows_text, secs, span

# The thread-stop query must run at least this many deadlines alone: then an exception landing at
# the deadline shows as under half of the query's CPU, and one landing at its end as about all.
THREAD_STOP_MIN_DEADLINES = 2.0
CLEANUP_GRACE_SECONDS = 1.0  # app.kernel.defaults.CLEANUP_GRACE_SECONDS: the hard time limit's margin, for old records
NOT_RECORDED = ("missing", "failed")  # outcomes `producer.send iterations` writes for an iteration without a record


def planned(data: dict) -> dict[str, dict]:
    """Every job the run planned (job id -> spec). Records written before the plan was kept: the jobs there."""
    return data.get("plan") or {job_id: d.get("job", {}) for job_id, d in data["jobs"].items()}


def spec_of(data: dict, job_id: str) -> dict:
    """A job's spec: its record's, else the plan's."""
    return (data["jobs"].get(job_id) or {}).get("job") or planned(data).get(job_id, {})


def stop_workload(spec: dict | None) -> str:
    """The workload a thread-stop job measured (its params'; DuckDB in records from before there were others)."""
    return ((spec or {}).get("params") or {}).get("workload") or "duckdb"


def job_problem(data: dict, job_id: str) -> str | None:
    """Why a planned job gives nothing (or only part) to judge, or None: its record is missing, it
    failed (with its error), or an iteration has no record."""
    d = data["jobs"].get(job_id)
    if d is None:
        return "its record is missing from claims.json"
    if d.get("error"):
        return f"the job failed: {first_line(d['error'])}"
    spec = spec_of(data, job_id)
    if spec.get("kind") == "plain":
        return None if d.get("result") else "the job gave no result"
    records = d.get("records") or []
    if not records:
        return "the job gave no records"
    bad = [r for r in records if r.get("outcome") in NOT_RECORDED]
    if bad:
        r = bad[0]
        return (f"iteration {r.get('iteration')} has no record ({r.get('outcome')}: "
                f"{r.get('exception_type')}: {first_line(r.get('exception_message') or '', 100)})")
    want = spec.get("iterations") or (data.get("settings") or {}).get("ITERATIONS")
    if want:
        have = {r.get("iteration") for r in records}
        absent = [i for i in range(1, int(want) + 1) if i not in have]
        if absent:
            return f"no record of iteration {', '.join(map(str, absent))} (of {want})"
    return None


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
        sized = f"{rows_text([r.get('rows')])}, {secs(r.get('expected_seconds'))} expected"
        if a.get("watchdog_ran_at") is None or i.get("watchdog_ran_at") is None or r.get("query_alone", 0) < deadline:
            return (f"the query ended before its deadline (alone {secs(r.get('query_alone'))}, deadline "
                    f"{deadline:g} s; {sized}): the timer thread never fired during the call")
        if r.get("query_alone", 0) < THREAD_STOP_MIN_DEADLINES * deadline:
            return (f"the query ran only {secs(r.get('query_alone'))} alone, under {THREAD_STOP_MIN_DEADLINES:g}x its "
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
                    f"{rows_text(r.get('rows') for r in short)}): a limit that never came due was not ignored")
        return None
    early = [r for r in recs if r.get("outcome") == "ok"]
    if early:
        deadline = joined(f"{r['timeout']:g}" for r in early if isinstance(r.get("timeout"), (int, float))) or "?"
        return (f"the query ended before its deadline in {len(early)} of {len(recs)} iterations (it ran "
                f"{span(r.get('elapsed') for r in early)}, deadline {deadline} s; "
                f"{rows_text(r.get('rows') for r in early)}, "
                f"{span(r.get('expected_seconds') for r in early)} expected): "
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
                    f"({rows_text(x.get('rows') for x in short)}), before the settled snapshot "
                    f"{(r.get('timeout') or 0) + r['settle_seconds']:g} s after it: a timed-out child would end on "
                    "its own before it is counted")
    return None


def _workload_premise(r: dict) -> str | None:
    """premise_failure of a thread-stop job on a workload other than DuckDB (None also when it could not be imported)."""
    if r.get("import_error"):
        return None
    a, deadline, alone = r.get("async_exc") or {}, r.get("deadline") or 0.0, r.get("query_alone") or 0.0
    sized = (f"{r['workload']}: {r.get('rows') or 0:,} {r.get('unit', 'units')}, "
             f"{secs(r.get('expected_seconds'))} expected")
    if alone < deadline or (a.get("call_finished") and (a.get("elapsed") or 0.0) < deadline):
        return (f"the query ended before its deadline ({sized}; alone {secs(alone)}, deadline {deadline:g} s): "
                "the watchdog had nothing to stop")
    if alone < THREAD_STOP_MIN_DEADLINES * deadline:
        return (f"the query ran only {secs(alone)} alone, under {THREAD_STOP_MIN_DEADLINES:g}x its {deadline:g} s "
                f"deadline ({sized}): an exception at the deadline and one at its end look alike")
    return None


def _matches(spec: dict, match: dict) -> bool:
    return all(spec.get(k) == v for k, v in match.items())


def gaps(data: dict, kind: str, **match) -> list[tuple[str, str]]:
    """Planned jobs of `kind` matching `match` that cannot be judged, with why: (job id, reason)."""
    out = []
    for job_id, spec in sorted(planned(data).items()):
        spec = spec_of(data, job_id) or spec
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
    for job_id, d in ordered(data):
        spec = d.get("job", {})
        if spec.get("kind") == "worker" and _matches(spec, match) and job_problem(data, job_id) is None \
                and not (premise and premise_failure(d)):
            out.append((job_id, d))
    return out


def plain_jobs(data: dict, experiment: str) -> list[tuple[str, dict]]:
    """Experiments that gave a result whose premise held."""
    return [(job_id, d) for job_id, d in ordered(data)
            if d.get("job", {}).get("experiment") == experiment and job_problem(data, job_id) is None
            and not premise_failure(d)]


def ordered(data: dict) -> list[tuple[str, dict]]:
    """Jobs in a reading order: host python first, then 3.14, then 3.14t; fork before forkserver."""

    def key(item):
        spec = item[1].get("job", {})
        method = spec.get("start_method")
        return (INTERPS.index(spec.get("interp", "host")),
                METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), item[0])

    return sorted(data["jobs"].items(), key=key)


# --- one worker job's numbers ---------------------------------------------------------------------


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
