"""Claims 1 to 3: what timeout-decorator's multiprocessing fallback leaves behind in a solo worker,
with and without reaping, on the GIL build and on the free-threaded one."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from .helpers import (CAVEAT, FAILS, HOLDS, METHOD_ORDER, PROCESS_STRATEGIES, UNMEASURED, joined, label,
                      not_measured, pairs, span, unmeasured, with_gaps)
from .jobs import gaps, pattern, series, spec_of, worker_jobs
from .sizing import describe_sizing, job_sizing, rerun_note

GIL_BUILDS = ("host", "gil")  # the interpreters with the GIL: claim 1's


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
            if _is_process(spec_of(data, j), interps)]


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
    jobs = _process_jobs(data, GIL_BUILDS)
    found = _process_gaps(data, GIL_BUILDS)
    if not jobs:
        return not_measured(data, found, "no GIL-build worker ran", "host", "gil")
    facts, measured, by_method = {}, [], {}
    for job_id, d in jobs:
        spec, s = d["job"], series(d)
        p = pattern(s)
        by_method.setdefault(spec["start_method"], []).append((spec["interp"], p, s))
        facts[job_id] = {"pattern": p, **{k: s[k] for k in ("outcomes", "exception_types", "immediate", "settled",
                                                              "cpu_after_deadline", "left_at_end", "worker_stop")}}
        measured.append(_claim1_measured(data, d, s))
    parts, acc, trans = [], [], []
    for method in sorted(by_method, key=METHOD_ORDER.index):
        kind, text = _claim1_method(data, method, by_method[method])
        if kind == "accumulates":
            acc.append(method)
        elif kind == "cleared":
            trans.append(method)
        parts.append(text)
    seen = sum(_snapshot_counts(data, GIL_BUILDS, m)["3/1"] for m in by_method)
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
    return with_gaps({"verdict": verdict, "summary": "; ".join(parts), "why": _claim1_why(acc, trans),
                      "measured": measured, "facts": facts}, found)


def _claim1_measured(data: dict, d: dict, s: dict) -> str:
    """One GIL-build worker's line in the details: its snapshots, what it left, the CPU that burned."""
    spec, left = d["job"], s["left_at_end"]
    return (f"{label(data, spec['interp'], False)}, {spec['start_method']}: children/zombies right after the call "
            f"{pairs(s['immediate'])}, settled {pairs(s['settled'])}; task processes left at the end "
            f"{left.get('alive', 0)} live ({left.get('sigterm_caught', 0)} with a SIGTERM "
            f"handler, {left.get('burning', 0)} using CPU), {left.get('zombies', 0)} zombie; "
            f"CPU after the deadline {span(s['cpu_after_deadline'])} per iteration; worker stop: {s['worker_stop']}; "
            f"{describe_sizing(job_sizing(d))}{rerun_note(d)}")


def _claim1_method(data: dict, method: str, rows: list[tuple[str, str, dict]]) -> tuple[str | None, str]:
    """What one start method's workers left: (accumulates | cleared | None for a mix, the summary's words)."""
    who = joined(label(data, i) for i, _, _ in rows)
    kinds = {p for _, p, _ in rows}
    if kinds == {"accumulates"}:
        settled = [x["live_tasks"] for x in rows[0][2]["settled"]]
        cpu = [c for _, _, s in rows for c in s["cpu_after_deadline"]]
        caught = sum(s["left_at_end"].get("sigterm_caught", 0) for _, _, s in rows)
        alive = sum(s["left_at_end"].get("alive", 0) for _, _, s in rows)
        return "accumulates", (
            f"{method} ({who}): live task processes after each iteration {'/'.join(map(str, settled))}, "
            f"0 zombies, {caught} of {alive} with a SIGTERM handler, CPU after the deadline "
            f"{span(cpu)} per iteration (in the {data['settings']['SETTLE_SECONDS']:g} s settle window)")
    if kinds == {"cleared"}:
        counts = _snapshot_counts(data, GIL_BUILDS, method)
        shown = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
        settled = sorted({f"{x['children']}/{x['zombies']}" for _, _, s in rows for x in s["settled"]})
        return "cleared", (f"{method} ({who}): right after the call {shown}; settled {'/'.join(settled)} every "
                           "iteration, nothing left")
    return None, f"{method} ({who}): " + ", ".join(f"{label(data, i)} {p}" for i, p, _ in rows)


def _claim1_why(acc: list[str], trans: list[str]) -> str:
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
    return "; ".join(why) + "."


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
            f"{describe_sizing(job_sizing(d))}{rerun_note(d)}")
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
        facts[job_id] = {"pattern": p, "gil_build_pattern": ref_p, "gil_enabled": s["gil_enabled"],
                         "PYTHON_GIL": _python_gil(spec), "immediate": s["immediate"], "settled": s["settled"],
                         "left_at_end": s["left_at_end"]}
        line, part = _claim3_texts(data, d, s, method, ref_p)
        measured.append(line)
        parts.append(part)
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


def _python_gil(spec: dict) -> str:
    """PYTHON_GIL in a free-threaded worker's environment: `0` (the GIL kept off) or `unset`."""
    return "0" if spec.get("gil_off") else "unset"


def _claim3_texts(data: dict, d: dict, s: dict, method: str, ref_p: str | None) -> tuple[str, str]:
    """A free-threaded worker's line in the details and its part of the summary, next to the GIL build's pattern."""
    p, gil_env = pattern(s), _python_gil(d["job"])
    gil_on = "/".join(str(g).lower() for g in s["gil_enabled"])
    line = (f"{label(data, 'nogil', False)}, {method}, PYTHON_GIL={gil_env} (GIL on after import duckdb: {gil_on}): "
            f"right after the call {pairs(s['immediate'])}, settled {pairs(s['settled'])}; left at the end "
            f"{s['left_at_end'].get('alive', 0)} live -> {p} (3.14 gil build: {ref_p or 'not measured'}); "
            f"{describe_sizing(job_sizing(d))}{rerun_note(d)}")
    detail = ("live task processes " + "/".join(str(x["live_tasks"]) for x in s["settled"])
              if p == "accumulates" else f"settled {joined(pairs([x]) for x in s['settled'])}")
    return line, (f"{method}, PYTHON_GIL={gil_env} (GIL on: {gil_on}): {detail} -> {p}"
                  + (f" (gil build: {ref_p})" if ref_p else ""))
