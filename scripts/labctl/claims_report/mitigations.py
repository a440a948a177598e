"""Claim 8: the mitigations, each one works, works in prefork only, does not work, or was not measured."""

from __future__ import annotations

from dataclasses import dataclass, field

from .helpers import (CAVEAT, FAILS, HOLDS, UNMEASURED, gap_text, joined, label, not_measured, pairs, short_exc, span,
                      with_gaps)
from .jobs import gaps, planned, series, spec_of, worker_jobs
from .leftovers import claim2
from .sizing import describe_sizing, job_sizing, rerun_note

CHILDREN_ALLOWED = "claims.leak_demo_children_allowed"  # the task that clears the prefork pool process's daemon flag


@dataclass
class _Tally:
    """What claim 8 gathers, mitigation by mitigation, in the order the row shows them."""

    sub: dict[str, str] = field(default_factory=dict)  # mitigation -> works | ... | not measured
    parts: list[str] = field(default_factory=list)  # the summary, one part per mitigation
    measured: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    lost: list[tuple[str, str]] = field(default_factory=list)  # jobs that could not be judged, with why


def claim8(data: dict) -> dict:
    """Each mitigation: works, works in prefork only, does not work, or not measured (never guessed)."""
    t = _Tally()
    _reaping(data, t)
    _time_limits(data, t)
    _max_tasks_per_child(data, t)
    _interrupt(data, t)
    sub, facts, measured = t.sub, t.facts, t.measured
    facts["mitigations"] = sub
    lost = list(dict(t.lost).items())
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
    return with_gaps({"verdict": verdict, "summary": "; ".join(t.parts), "why": why + ".", "measured": measured,
                      "facts": facts}, lost)


def _reaping(data: dict, t: _Tally) -> None:
    """Reaping: the verdict of claim 2, when it could be judged."""
    c2 = claim2(data)
    reaped = sum((c or {}).get("terminated", 0) + (c or {}).get("killed", 0)
                 for j, f in c2["facts"].items() if isinstance(f, dict) and "cleanup" in f for c in f["cleanup"])
    if c2["verdict"] != UNMEASURED and not c2["facts"].get("all_zero", False):
        t.sub["reaping"] = "does not work"
        t.parts.append("reaping: leftovers remain (row 2)")
    elif c2["verdict"] != UNMEASURED and reaped:
        t.sub["reaping"] = "works"
        t.parts.append("reaping: 0 task processes and 0 zombies after every iteration (row 2)")
    elif c2["verdict"] != UNMEASURED:  # nothing was left to reap where it was judged: it proved nothing
        t.sub["reaping"] = UNMEASURED
        t.parts.append("reaping: not measured (the reaper found nothing to reap in the workers judged)")
    elif any(s.get("strategy") == "process+cleanup" for s in planned(data).values()):
        t.sub["reaping"] = UNMEASURED
        t.parts.append(f"reaping: not measured ({c2['summary']})")
        t.lost += list(c2["facts"].get("not_measured", {}).items())


def _time_limits(data: dict, t: _Tally) -> None:
    """Celery time limits: prefork enforces them; solo ignores them (if the query outlasts them)."""
    tl = worker_jobs(data, strategy="prefork-time-limit")
    tl_gaps = gaps(data, "worker", strategy="prefork-time-limit")
    t.lost += tl_gaps
    if not (tl or tl_gaps):
        return
    pre, solo = [], []
    for job_id, d in tl:
        spec, s = d["job"], series(d)
        t.facts[job_id] = {"pool": spec["pool"], "outcomes": s["outcomes"], "exception_types": s["exception_types"],
                           "exception_messages": s["exception_messages"], "elapsed": s["elapsed"]}
        (pre if spec["pool"] == "prefork" else solo).append((spec, s))
        t.measured.append(f"time limits, {spec['pool']} pool, {label(data, spec['interp'], False)}: "
                          f"{', '.join(s['outcomes'])} ({', '.join(s['exception_messages']) or 'no exception'}) "
                          f"after {span(s['elapsed'])}; {describe_sizing(job_sizing(d))}{rerun_note(d)}")
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
    t.parts.append("Celery time limits: " + ", ".join(text))
    if not pre:
        t.sub["Celery time limits"] = UNMEASURED
    elif not pre_ok:
        t.sub["Celery time limits"] = "does not work"
    elif not solo:
        t.sub["Celery time limits"] = "works in prefork (solo not measured)"
    else:
        t.sub["Celery time limits"] = "works in prefork only" if solo_ignored else "works"


@dataclass
class _Recycling:
    """What `--max-tasks-per-child=1` did, per pool (None: not measured)."""

    solo_ignored: bool | None = None  # the solo pool kept its process, and what its calls left piled up
    plain_refused: bool | None = None  # prefork refused to start the fallback (the daemon flag)
    allowed: dict[str, list[str]] = field(default_factory=dict)  # prefork, daemon flag cleared: start method -> results
    control: dict[str, list[int]] = field(default_factory=dict)  # the same without the option: zombies left per worker


def _max_tasks_per_child(data: dict, t: _Tally) -> None:
    """`--max-tasks-per-child=1`: the solo pool (the one that can run the fallback) decides."""
    m = worker_jobs(data, max_tasks_per_child=1)
    ctrl = worker_jobs(data, task=CHILDREN_ALLOWED, max_tasks_per_child=None)
    m_gaps = gaps(data, "worker", max_tasks_per_child=1)
    t.lost += m_gaps + gaps(data, "worker", task=CHILDREN_ALLOWED, max_tasks_per_child=None)
    if not (m or m_gaps):
        return
    rec = _Recycling()
    for job_id, d in m + ctrl:
        _recycling_job(data, job_id, d, t, rec)
    t.facts.update({"mtpc_solo_ignored": rec.solo_ignored, "mtpc_prefork_plain_refused": rec.plain_refused,
                    "mtpc_prefork_children_allowed": rec.allowed,
                    "prefork_children_allowed_without_mtpc_left": rec.control})
    solo_gap = [(j, r) for j, r in m_gaps if spec_of(data, j).get("pool") == "solo"]
    t.parts.append("`--max-tasks-per-child=1`: " + "; ".join(_recycling_text(rec, solo_gap)))
    # "works" only when the solo job was measured and it recycled: a missing job is not a success
    t.sub["--max-tasks-per-child"] = (UNMEASURED if rec.solo_ignored is None else
                                      "does not work" if rec.solo_ignored else "works")


def _recycling_job(data: dict, job_id: str, d: dict, t: _Tally, rec: _Recycling) -> None:
    """One `--max-tasks-per-child` (or control) worker: its facts and line, and what it says in `rec`."""
    spec, s = d["job"], series(d)
    recycled = len(s["pids"]) > 1 and len(set(s["pids"])) == len(s["pids"])
    left = s["left_at_end"]
    t.facts[job_id] = {"pool": spec["pool"], "task": spec["task"], "start_method": spec["start_method"],
                       "mtpc": spec["max_tasks_per_child"], "outcomes": s["outcomes"],
                       "exception_types": s["exception_types"], "pids": s["pids"], "recycled": recycled,
                       "settled": s["settled"], "left_at_end": left}
    flag = "daemon flag cleared" if spec["task"] != "tasks.leak_demo" else "plain task"
    t.measured.append(
        f"--max-tasks-per-child={spec['max_tasks_per_child'] or 'unset'}, {spec['pool']} pool, {flag}, "
        f"{label(data, spec['interp'], False)} {spec['start_method'] or '(default start method)'}: "
        f"{', '.join(s['outcomes'])}{' (' + joined(short_exc(e) for e in s['exception_types']) + ')' if s['exception_types'] else ''}; "
        f"pool process {'replaced after every task' if recycled else 'kept'}; settled {pairs(s['settled'])}; "
        f"left at the end: {left.get('alive', 0)} live, {left.get('zombies', 0)} zombie")
    if spec["max_tasks_per_child"] != 1:  # the control: children allowed, no recycling
        rec.control.setdefault(spec["start_method"], []).append(left.get("zombies", 0))
    elif spec["pool"] == "solo":
        # the same process kept, and what its calls left is still there: running or, once a
        # short query finished, a zombie nobody waited for
        ignored = not recycled and left.get("alive", 0) + left.get("zombies", 0) >= len(s["pids"])
        rec.solo_ignored = ignored if rec.solo_ignored is None else rec.solo_ignored and ignored
    elif spec["task"] == "tasks.leak_demo":
        refused = s["exception_types"] == ["AssertionError"]
        rec.plain_refused = refused if rec.plain_refused is None else rec.plain_refused and refused
    else:
        ok = all(o == "timeout" for o in s["outcomes"])
        clean = ok and recycled and not left.get("alive") and not left.get("zombies")
        rec.allowed.setdefault(spec["start_method"], []).append(
            "reaped" if clean else joined(f"{short_exc(e).split('.')[-1]}" for e in s["exception_types"])
            + (f" \"{s['exception_messages'][0][:100]}\"" if s["exception_messages"] else "") or "left")


def _recycling_text(rec: _Recycling, solo_gap: list[tuple[str, str]]) -> list[str]:
    """The summary's words on `--max-tasks-per-child=1`, per pool."""

    def without(method):
        if method not in rec.control:
            return ""
        counts = sorted(set(rec.control[method]))
        return f" (without the option: {'/'.join(map(str, counts))} zombie left per worker at the end)"

    text = []
    if rec.solo_ignored is not None:
        text.append("solo: ignored (same process, leftovers pile up)" if rec.solo_ignored else "solo: recycles")
    else:
        text.append("solo: not measured" + (f" ({gap_text(solo_gap)})" if solo_gap else " (no solo job planned)"))
    if rec.plain_refused is not None:
        text.append("prefork: the fallback cannot start (AssertionError)" if rec.plain_refused else "prefork: starts")
    if rec.allowed:
        text.append("prefork with the daemon flag cleared: " + ", ".join(
            f"{method} -> {'killed children reaped when the pool process is replaced' if set(v) == {'reaped'} else joined(v)}"
            f"{without(method)}" for method, v in sorted(rec.allowed.items())))
    return text


def _interrupt(data: dict, t: _Tally) -> None:
    """`con.interrupt()` from a watchdog thread."""
    it = worker_jobs(data, strategy="interrupt")
    it_gaps = gaps(data, "worker", strategy="interrupt")
    t.lost += it_gaps
    if not it:
        if it_gaps:
            t.sub["con.interrupt()"] = UNMEASURED
            t.parts.append("`con.interrupt()`: not measured")
        return
    ok, over, who = True, [], []
    for job_id, d in it:
        s = series(d)
        good = (all(o == "timeout" for o in s["outcomes"]) and s["exception_types"] == ["_duckdb.InterruptException"]
                and all(x["tasks"] == 0 for x in s["settled"]))
        ok = ok and good
        over += s["overshoot"]
        who.append(label(data, d["job"]["interp"]))
        t.facts[job_id] = {"outcomes": s["outcomes"], "exception_types": s["exception_types"],
                           "overshoot": s["overshoot"], "settled": s["settled"], "cpu": s["cpu_after_deadline"]}
        t.measured.append(f"`con.interrupt()` from a watchdog thread, {label(data, d['job']['interp'], False)}: "
                          f"{', '.join(s['outcomes'])} ({', '.join(s['exception_types'])}), overshoot "
                          f"{span(s['overshoot'], 'ms', 1000, 0)}, children/zombies {pairs(s['settled'])}, CPU after "
                          f"the deadline {span(s['cpu_after_deadline'])}; {describe_sizing(job_sizing(d))}"
                          f"{rerun_note(d)}")
    t.sub["con.interrupt()"] = "works" if ok else "does not work"
    t.parts.append(f"`con.interrupt()` ({joined(who)}): InterruptException {span(over, 'ms', 1000, 0)} after the "
                   f"deadline, no process" if ok else "`con.interrupt()`: did not stop the query cleanly")
