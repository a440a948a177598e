"""Claim 5: under the GIL a thread cannot stop a long C-extension call. One verdict per workload
(app/kernel/workload_axis.py), DuckDB first, and one over them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from app.kernel import workload_axis

from .helpers import (CAVEAT, FAILS, HOLDS, UNMEASURED, joined, label, ms, not_measured, secs, short_exc, span,
                      unmeasured, with_gaps)
from .jobs import gaps, plain_jobs, planned, spec_of, stop_workload
from .sizing import describe_sizing, job_sizing, rerun_note

FAST = 0.5  # seconds past the deadline that still count as "stopped on time" on this noisy machine
# What the thread-stop experiment's watchdog raises (app/experiments/claims.py); records made before
# the experiments had a folder of their own name it app.experiments.WatchdogTimeout.
WATCHDOG_TIMEOUTS = ("app.experiments.claims.WatchdogTimeout", "app.experiments.WatchdogTimeout")
# Claim 5, one verdict per workload (app/kernel/workload_axis.py), DuckDB first; the name of each one's interrupt
STOP_WORKLOADS = workload_axis.WORKLOAD_NAMES
INTERRUPT_NAMES = {"duckdb": "`con.interrupt()`", "sqlite": "`Connection.interrupt()`",
                   "pyarrow": "SIGINT to Arrow's stop token"}


def _thread_stop_jobs(data: dict, workload: str) -> list[tuple[str, dict]]:
    """The thread-stop jobs of `workload` that gave a result whose premise held."""
    return [(j, d) for j, d in plain_jobs(data, "thread-stop") if stop_workload(d["job"]) == workload]


def _thread_stop_gaps(data: dict, workload: str) -> list[tuple[str, str]]:
    """The planned thread-stop jobs of `workload` that cannot be judged, with why."""
    return [(j, r) for j, r in gaps(data, "plain", experiment="thread-stop")
            if stop_workload(spec_of(data, j)) == workload]


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
        f = facts[job_id] = _duckdb_facts(d)
        landed = f["async_exc"]["exception_type"] is not None
        for cond, bucket in ((f["async_late"], late), (landed and not f["async_late"], early),
                             (f["interrupt_fast"], fast), (f.get("spin_blocks_watchdog"), blocked)):
            if cond:
                bucket.append(d["job"]["interp"])
        measured.append(_duckdb_measured(data, d))
    n = len(runs)
    by = {d["job"]["interp"]: d["result"] for _, d in runs}
    spun = [i for i in by if by[i].get("spin_async_exc") is not None]
    summary = _duckdb_summary(data, by, facts, late, early, fast)
    if spun:
        blocked_late = [by[i]["spin_async_exc"]["watchdog_late"] for i in blocked]
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


def _duckdb_facts(d: dict) -> dict:
    """What the rule reads of one DuckDB thread-stop job: did the async exception come late (the query ran to
    its end), did `con.interrupt()` stop it fast and, in records that have it, did the builtin keep the timer
    thread from running."""
    r = d["result"]
    a, i, sp = r["async_exc"], r["interrupt"], r.get("spin_async_exc")
    # Did the query run to its end? The CPU it used says so whatever the machine's load.
    ratio = a["cpu"] / r["query_alone_cpu"] if r.get("query_alone_cpu") else 0.0
    # late: landed with the query done; landed with ratio < 0.5: early, most of the query still to do
    is_late = a["exception_type"] is not None and ratio >= 0.5
    is_fast = i["exception_type"] == "_duckdb.InterruptException" and i["overshoot"] < FAST
    f = {"build": r["build"], "gil_enabled": r["gil_enabled"], "query_alone": r["query_alone"],
         "async_exc": a, "async_cpu_ratio": round(ratio, 2), "async_late": is_late, "interrupt": i,
         "interrupt_fast": is_fast, "sizing": job_sizing(d)}
    if sp is not None:  # the GIL-holding builtin (records from before it was a workload of its own)
        f.update({"spin_alone": r["spin_alone"], "spin": sp, "spin_blocks_watchdog": _timer_blocked(sp)})
    return f


def _duckdb_measured(data: dict, d: dict) -> str:
    """One DuckDB thread-stop job's line in the details."""
    r, interp = d["result"], d["job"]["interp"]
    a, i, sp = r["async_exc"], r["interrupt"], r.get("spin_async_exc")
    spin_text = ""
    if sp is not None:
        timer = (f"the timer thread ran {secs(sp['watchdog_late'])} late" if sp["watchdog_late"] is not None
                 else "the timer thread never ran before the builtin returned")
        spin_text = (f"; a GIL-holding builtin ({secs(r['spin_alone'])} alone, deadline {secs(sp['deadline'])}): "
                     f"{timer}, the exception came after {secs(sp['elapsed'])}")
    return (f"{label(data, interp, False)} (GIL {'on' if r['gil_enabled'] else 'off'}), deadline {r['deadline']:g} s: "
            f"PyThreadState_SetAsyncExc from a timer thread ({ms(a['watchdog_late'])} late) -> "
            f"{a['exception_type'] or 'no exception'} after {secs(a['elapsed'])}, having used {secs(a['cpu'])} CPU "
            f"(the query alone: {secs(r['query_alone'])}, {secs(r['query_alone_cpu'])} CPU); "
            f"`con.interrupt()` -> {i['exception_type'] or 'no exception'} {ms(i['overshoot'])} after the deadline"
            f"{spin_text}; {describe_sizing(job_sizing(d))}{rerun_note(d)}")


def _duckdb_summary(data: dict, by: dict, facts: dict, late: list, early: list, fast: list) -> str:
    """Where the async exception landed and how soon `con.interrupt()` stopped the query."""
    deadlines = joined(f"{r['deadline']:g}" for r in by.values())
    return (
        f"async exception from a timer thread (deadline {deadlines} s): landed after "
        f"{span(r['async_exc']['elapsed'] for r in by.values())}, once the query had used "
        f"{span([facts[j]['async_cpu_ratio'] * 100 for j in facts], '%', digits=0)} of the CPU it needs to finish, on "
        f"{joined(label(data, i) for i in late) or 'none'}"
        + (f", early (mid-query) on {joined(label(data, i) for i in early)}" if early else "")
        + f"; `con.interrupt()`: InterruptException {span((r['interrupt']['overshoot'] for r in by.values()), 'ms', 1000, 0)} "
        f"after the deadline on {joined(label(data, i) for i in fast) or 'none'}")


@dataclass
class _Stops:
    """Where (on which interpreters) each way of stopping one workload's call worked."""

    stopped: list[str] = field(default_factory=list)  # the async exception stopped the call mid-call
    ran_on: list[str] = field(default_factory=list)  # it did not: the call ran on (to its end)
    blocked: list[str] = field(default_factory=list)  # the watchdog thread itself could not run during the call
    fast: list[str] = field(default_factory=list)  # the library's own interrupt stopped it on time
    slow: list[str] = field(default_factory=list)  # it did not


def _claim5_workload(data: dict, workload: str) -> dict:
    """Claim 5 on one workload other than DuckDB: an async exception from a watchdog thread, and its own
    interrupt where it declares one (the lab's watchdog thread, strategy `interrupt`)."""
    declared = workload_axis.WORKLOADS[workload]
    name = INTERRUPT_NAMES.get(workload, "its interrupt")
    runs, found = _workload_runs(data, workload)
    if not runs:
        if not found and any("workload" not in ((spec.get("params") or {})) for spec in planned(data).values()
                             if spec.get("experiment") == "thread-stop"):
            return unmeasured(f"not measured: this record has no {workload} measurement (claim 5 measured DuckDB "
                              "alone when it was made)", {"reason": "record without per-workload claim-5 data"})
        return not_measured(data, found, f"the {workload} thread experiment did not run")
    facts, measured, st = {}, [], _Stops()
    for job_id, d in runs:
        facts[job_id] = _workload_facts(d, st)
        measured.append(_workload_measured(data, d, workload, name))
    by = {d["job"]["interp"]: d["result"] for _, d in runs}
    summary = (_async_summary(data, runs, by, facts, st) + _blocked_summary(data, by, st)
               + _interrupt_summary(data, by, name, declared, st))
    facts.update({"async_stops": st.stopped, "async_late": st.ran_on, "watchdog_blocked": st.blocked,
                  "interrupt_fast": st.fast, "interrupt_slow": st.slow,
                  "interrupt_declared": "interrupt" in declared.stops})
    verdict, why = _workload_verdict(data, workload, name, declared, st)
    return with_gaps({"verdict": verdict, "summary": summary, "why": why + ".", "measured": measured, "facts": facts},
                     found)


def _workload_runs(data: dict, workload: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    """The thread-stop jobs of `workload` to judge, and those not to, with why (including a failed import or call)."""
    declared = workload_axis.WORKLOADS[workload]
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
    return runs, found


def _workload_facts(d: dict, st: _Stops) -> dict:
    """What the rule reads of one job: did the async exception stop the call, did the watchdog thread run,
    did the library's own interrupt stop it; adds the job's interpreter to `st` where each did."""
    r, interp = d["result"], d["job"]["interp"]
    a, i, alone_cpu = r["async_exc"], r.get("interrupt"), r.get("query_alone_cpu") or 0.0
    ratio = a["cpu"] / alone_cpu if alone_cpu else 0.0
    # an exception that landed with most of the call's CPU still to use stopped it; None: the
    # watchdog could not run before the call returned (then it was cancelled)
    is_stopped = a["exception_type"] in WATCHDOG_TIMEOUTS and ratio < 0.5
    (st.stopped if is_stopped else st.ran_on).append(interp)
    if _timer_blocked({**a, "deadline": r["deadline"]}):
        st.blocked.append(interp)
    f = {"build": r["build"], "gil_enabled": r["gil_enabled"], "library": r.get("library"),
         "deadline": r["deadline"], "query_alone": r["query_alone"], "async_exc": a,
         "async_cpu_ratio": round(ratio, 2), "async_stops": is_stopped, "watchdog_blocked": interp in st.blocked,
         "sizing": job_sizing(d)}
    if i is not None:
        i_ratio = i["cpu"] / alone_cpu if alone_cpu else 0.0
        # stopped: ended as a timeout of its own kind, soon after the deadline, most of the call's work not done
        i_stops = i["outcome"] == "timeout" and i["overshoot"] < FAST and i_ratio < 0.5
        (st.fast if i_stops else st.slow).append(interp)
        f.update({"interrupt": i, "interrupt_cpu_ratio": round(i_ratio, 2), "interrupt_stops": i_stops})
    return f


def _workload_measured(data: dict, d: dict, workload: str, name: str) -> str:
    """One job's line in the details: the async exception, then the library's own interrupt (or that it has none)."""
    r, interp = d["result"], d["job"]["interp"]
    a, i, alone_cpu = r["async_exc"], r.get("interrupt"), r.get("query_alone_cpu") or 0.0
    if i is not None:
        i_text = (f"{name} from the lab's watchdog thread (strategy `interrupt`) -> {i['outcome']} "
                  f"({short_exc(i['exception_type']) if i['exception_type'] else 'no exception'}) "
                  f"{ms(i['overshoot'])} after the deadline, having used {secs(i['cpu'])} CPU")
    else:
        stops = workload_axis.WORKLOADS[workload].stops
        i_text = f"no interrupt of its own (`{workload}` declares {', '.join(stops) or 'no stop'})"
    timer = (f"{ms(a['watchdog_late'])} late" if a["watchdog_late"] is not None
             else "never ran before the call returned")
    return (f"{label(data, interp, False)} (GIL {'on' if r['gil_enabled'] else 'off'}), deadline "
            f"{secs(r['deadline'])}: PyThreadState_SetAsyncExc from a watchdog thread ({timer}) -> "
            f"{a['exception_type'] or 'no exception'} after {secs(a['elapsed'])}, having used {secs(a['cpu'])} CPU "
            f"(the call alone: {secs(r['query_alone'])}, {secs(alone_cpu)} CPU); {i_text}; "
            f"{describe_sizing(job_sizing(d))}{rerun_note(d)}")


def _where(data: dict, interps: Iterable[str]) -> str:
    return joined(label(data, x) for x in interps) or "none"


def _async_summary(data: dict, runs: list[tuple[str, dict]], by: dict, facts: dict, st: _Stops) -> str:
    """Where the async exception landed (and how late), where it never did, where it stopped the call."""
    landed = [x for x in st.ran_on if by[x]["async_exc"]["exception_type"]]
    deadlines = span(r["deadline"] for r in by.values())
    ratios = [facts[j]["async_cpu_ratio"] * 100 for j, d in runs if d["job"]["interp"] in landed]
    return (f"async exception from a watchdog thread (deadline {deadlines}, a quarter into the call at most): "
            + (f"landed {span(by[x]['async_exc']['overshoot'] for x in landed)} after the deadline, once the call "
               f"had used {span(ratios, '%', digits=0)} "
               f"of the CPU it needs alone, on {_where(data, landed)}" if landed else "")
            + ("; " if landed and len(landed) < len(st.ran_on) else "")
            + (f"never raised (the watchdog did not run before the call returned) on "
               f"{_where(data, (x for x in st.ran_on if x not in landed))}" if len(landed) < len(st.ran_on) else "")
            + (f"; stopped mid-call on {_where(data, st.stopped)}" if st.stopped else ""))


def _blocked_summary(data: dict, by: dict, st: _Stops) -> str:
    """Where the watchdog thread itself could not run while the call held the GIL."""
    if not st.blocked:
        return ""
    return (f"; the watchdog thread itself ran late (by {span(by[x]['async_exc']['watchdog_late'] for x in st.blocked)}"
            f") on {_where(data, st.blocked)}, the call holding the GIL"
            + (f", on time on {_where(data, (x for x in by if x not in st.blocked))}"
               if len(st.blocked) < len(by) else ""))


def _interrupt_summary(data: dict, by: dict, name: str, declared, st: _Stops) -> str:
    """How soon the library's own interrupt stopped the call, where it declares one."""
    if "interrupt" not in declared.stops:
        return "; no interrupt of its own"
    text = ""
    if st.fast:
        ex = joined(short_exc(by[x]["interrupt"]["exception_type"]) for x in st.fast)
        text += (f"; {name} (watchdog thread): {ex} "
                 f"{span((by[x]['interrupt']['overshoot'] for x in st.fast), 'ms', 1000, 0)} after the deadline on "
                 f"{_where(data, st.fast)}")
    if st.slow:
        text += (f"; {name} (watchdog thread): did not stop it on {_where(data, st.slow)} (control back "
                 f"{span(by[x]['interrupt']['overshoot'] for x in st.slow)} after the deadline)")
    return text


def _workload_verdict(data: dict, workload: str, name: str, declared, st: _Stops) -> tuple[str, str]:
    gil = (f"; while it holds the GIL on {_where(data, st.blocked)} the watchdog thread cannot even run"
           if st.blocked else "")
    if st.stopped:
        return FAILS, (f"an async exception from a watchdog thread stopped the {workload} call mid-call on "
                       f"{_where(data, st.stopped)}")
    if st.fast:
        return CAVEAT, (f"no thread can stop the {workload} call by raising in it (the async exception lands only when "
                        f"the call returns, GIL or not{gil}), but its own interrupt, {name} from a watchdog thread, "
                        f"stops it within milliseconds without a process"
                        + (f" (not on {_where(data, st.slow)})" if st.slow else ""))
    if "interrupt" in declared.stops:
        return HOLDS, (f"the async exception lands only when the {workload} call returns (GIL or not{gil}), and its "
                       f"interrupt, {name}, was handled only when the call returned too: only a process stops it")
    return HOLDS, (f"the async exception lands only when the {workload} call returns (GIL or not{gil}), and {workload} "
                   "has no interrupt of its own: only a process stops it")


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
