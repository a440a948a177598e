"""The report of `scripts/lab claims`: every selected claim's verdict, and claims.md's table and details."""

from __future__ import annotations

from app.kernel import defaults, tables, workload_axis

from .gil_import import claim4
from .helpers import INTERPS, first_line, joined, label, span, unmeasured
from .jobs import ordered, planned, premise_failure
from .leftovers import claim1, claim2, claim3
from .mitigations import claim8
from .pickling import claim7
from .prefork import claim6
from .sizing import describe_sizing, job_sizing, rerun_note, sizing_by_interp
from .thread_stop import STOP_WORKLOADS, claim5

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


# --- claims.md ------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
        (d.get("result") or {}).get("duckdb") for _, d in ordered(data)  # a run without Celery workers (claim 5)
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
    for job_id, d in ordered(data):
        lines.append(f"- `{job_id}`: {describe_sizing(d.get('sizing') or job_sizing(d))}{rerun_note(d)}")
    failed = [j for j, d in data["jobs"].items() if d.get("error")]
    if failed:
        lines += ["", "Jobs that failed (the claims above are judged without them): "
                  + "; ".join(f"`{j}`: {first_line(data['jobs'][j]['error'])}" for j in failed)]
    absent = [j for j in planned(data) if j not in data["jobs"]]
    if absent:
        lines += ["", "Jobs planned but not recorded in claims.json: " + ", ".join(f"`{j}`" for j in absent)]
    premise = [(j, premise_failure(d)) for j, d in ordered(data) if premise_failure(d)]
    if premise:
        lines += ["", "Jobs whose premise failed (the query ended before its deadline; not judged): "
                  + "; ".join(f"`{j}`: {r}" for j, r in premise)]
    lines += ["", "Every record: `claims.json` next to this file; every worker's and experiment's output: `logs/`."]
    return "\n".join(lines) + "\n"
