"""Claim 4: importing a C extension not marked free-threading-safe turns the GIL back on."""

from __future__ import annotations

from .helpers import CAVEAT, FAILS, HOLDS, label, not_measured, with_gaps
from .jobs import gaps, plain_jobs, spec_of


def claim4(data: dict) -> dict:
    runs = plain_jobs(data, "gil-import")
    found = [(j, r) for j, r in gaps(data, "plain", experiment="gil-import")]
    facts, measured = {}, []
    for job_id, d in runs:
        r = d["result"]
        facts[job_id] = {"build": r["build"], "PYTHON_GIL": r["PYTHON_GIL"], "gil_before": r["gil_before"],
                         "after": {x["module"]: x["gil_enabled"] for x in r["steps"]}, "warnings": r["warnings"]}
    nogil = [(j, d["result"]) for j, d in runs if d["job"]["interp"] == "nogil" and d["result"].get("steps")]
    nogil_gaps = [(j, r) for j, r in found if spec_of(data, j).get("interp") == "nogil"]
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
