"""Claim 6: Celery's prefork pool cannot run the multiprocessing fallback; the solo pool can."""

from __future__ import annotations

from .helpers import CAVEAT, FAILS, HOLDS, joined, label, not_measured, short_exc, unmeasured, with_gaps
from .jobs import gaps, series, worker_jobs

DAEMONIC = "daemonic processes are not allowed to have children"


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
