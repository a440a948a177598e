"""Claim 7: on Python 3.14 the timed function must be a top-level function (forkserver pickles it)."""

from __future__ import annotations

from .helpers import CAVEAT, FAILS, HOLDS, METHOD_ORDER, joined, label, not_measured, short_exc, span, with_gaps
from .jobs import gaps, plain_jobs, spec_of


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
        measured += _measured(data, interp, r)
    py314 = [i for i in ("gil", "nogil") if _result(table, i, "forkserver", "top_level")]
    if not py314:
        lost = [(j, r) for j, r in found if spec_of(data, j).get("interp") in ("gil", "nogil")]
        out = not_measured(data, lost, "no CPython 3.14 interpreter ran the experiment", "gil", "nogil")
        out["facts"].update(facts)
        out["measured"] = measured + out["measured"]
        return out
    facts.update(_forkserver_facts(table, py314))
    if not (facts["top_level_ok"] and facts["local_fails"]):
        verdict = FAILS
        why = ("under forkserver " + ("a top-level function failed too" if not facts["top_level_ok"]
                                      else "a nested function or a lambda went through"))
    else:
        verdict = (CAVEAT if facts["decorated_in_place_fails"] or facts["parent_only_times_out"]
                   or facts["py311_forkserver_same"] else HOLDS)
        why = ("it is the start method, not the version: forkserver and spawn pickle the target by name, so besides "
               "nested functions and lambdas the usual `@timeout(...)` decorator on a top-level def fails too (wrap at "
               "call time instead, as app/strategies.py does), and a function the child cannot import is misreported "
               "as a timeout")
    return with_gaps({"verdict": verdict, "summary": _summary(data, table, py314, facts), "why": why + ".",
                      "measured": measured, "facts": facts}, found)


def _measured(data: dict, interp: str, r: dict) -> list[str]:
    """One interpreter's lines in the details: one per start method, each variant's outcome."""
    lines = []
    for method in sorted({x["start_method"] for x in r["results"]}, key=METHOD_ORDER.index):
        cells = []
        for x in (x for x in r["results"] if x["start_method"] == method):
            what = "ok" if x["outcome"] == "ok" else short_exc(x["exception_type"]).split(".")[-1]
            cells.append(f"{x['variant']} {what}" + (f" after {x['elapsed']:.1f} s" if x["outcome"] == "timeout" else ""))
        default = " (its default)" if method == r["default_start_method"] else ""
        lines.append(f"{label(data, interp, False)}, {method}{default}: " + ", ".join(cells))
    return lines


def _result(table: dict, interp: str, method: str, variant: str) -> dict:
    """One variant's result on one interpreter and start method ({} when not run)."""
    return table.get((interp, method, variant)) or {}


def _exc(data: dict, table: dict, interps: list[str], method: str, variant: str) -> str:
    """The exception a variant ended with: its name, or each name with the interpreters it came on."""
    by_name: dict = {}
    for i in interps:
        if _result(table, i, method, variant):
            name = short_exc(_result(table, i, method, variant).get("exception_type")).split(".")[-1]
            by_name.setdefault(name, []).append(label(data, i))
    if len(by_name) == 1:
        return next(iter(by_name))
    return ", ".join(f"{name} ({', '.join(who)})" for name, who in by_name.items())


def _forkserver_facts(table: dict, py314: list[str]) -> dict:
    """What the rule reads: each variant under forkserver on 3.14, fork's, and 3.11's under forkserver."""
    parent_only = [_result(table, i, "forkserver", "parent_only") for i in py314]
    return {"top_level_ok": all(_result(table, i, "forkserver", "top_level").get("outcome") == "ok" for i in py314),
            "local_fails": all(_result(table, i, "forkserver", v).get("outcome") == "error"
                               for i in py314 for v in ("nested", "lambda")),
            "decorated_in_place_fails": all(_result(table, i, "forkserver", "decorated_in_place").get("outcome")
                                            == "error" for i in py314),
            "parent_only_times_out": all(x.get("outcome") == "timeout" for x in parent_only),
            "fork_all_ok": all(x["outcome"] == "ok" for (_, m, _), x in table.items() if m == "fork"),
            "py311_forkserver_same": _result(table, "host", "forkserver", "nested").get("outcome") == "error"}


def _summary(data: dict, table: dict, py314: list[str], facts: dict) -> str:
    interps = [i for i in ("host", "gil", "nogil") if _result(table, i, "forkserver", "top_level")]
    parent_only = [_result(table, i, "forkserver", "parent_only") for i in py314]

    def exc(variant: str) -> str:
        return _exc(data, table, interps, "forkserver", variant)

    methods = joined(m for (_, m, _) in sorted(table, key=lambda k: METHOD_ORDER.index(k[1])) if m != "fork")
    return (f"{methods} ({joined(label(data, i) for i in interps)}): top-level function wrapped at call time "
            f"{'ok' if facts['top_level_ok'] else exc('top_level')}; "
            f"`@timeout` on a top-level def -> {exc('decorated_in_place')}; nested function "
            f"-> {exc('nested')}; lambda -> {exc('lambda')}; a "
            f"function the child cannot import -> "
            + (f"TimeoutError after the full {span([x.get('elapsed') for x in parent_only], digits=1)}"
               if facts["parent_only_times_out"] else exc("parent_only"))
            + f"; fork: {'every variant ok' if facts['fork_all_ok'] else 'not all ok'}")
