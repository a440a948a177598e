"""What every claim rule shares: the verdict words, the run's axes, and the text of a verdict row.

A verdict row: verdict, summary (the numbers, short, for the table), why (one sentence), measured
(one line per configuration, for the details section) and facts (the values the rule looked at).
`unmeasured`, `not_measured` and `with_gaps` make the rows that name what could not be judged.
"""

from __future__ import annotations

from typing import Iterable

from app.kernel import axes

HOLDS, CAVEAT, FAILS, UNMEASURED = "holds", "holds with a caveat", "does not hold", "not measured"
PREMISE = "premise failed"
METHOD_ORDER = list(axes.START_METHODS)
INTERPS = ("host", "gil", "nogil")
PROCESS_STRATEGIES = axes.PROCESS_STRATEGIES  # the multiprocessing fallback: a process per call


# --- the run's interpreters -----------------------------------------------------------------------


def label(data: dict, interp: str, short: bool = True) -> str:
    """`3.11`, `3.14`, `3.14t` (short) or `3.11.7 (host)`, `3.14.7 gil`, `3.14.7 free-threaded`."""
    v = data["interpreters"]["versions"].get(interp, {}).get("python")
    if short:
        base = ".".join(v.split(".")[:2]) if v else {"host": "host", "gil": "3.14", "nogil": "3.14"}[interp]
        return base + ("t" if interp == "nogil" else "")
    v = v or "?"
    return {"host": f"{v} (host python3)", "gil": f"{v} gil", "nogil": f"{v} free-threaded"}[interp]


def missing_interpreters(data: dict, *interps: str) -> str:
    """Why these interpreters were not there (e.g. no 3.14 builds: `scripts/lab setup`)."""
    missing = data["interpreters"].get("missing") or {}
    return "; ".join(missing[i] for i in interps if i in missing)


# --- text -----------------------------------------------------------------------------------------


def first_line(text: str, width: int = 160) -> str:
    """The first line of an error or message, cut to `width`."""
    return (text or "").strip().splitlines()[0][:width] if (text or "").strip() else "(no message)"


def rows_text(rows) -> str:
    """`1,000 rows` or `1,000-4,000 rows` over the counts given."""
    vals = sorted({int(r) for r in rows if isinstance(r, (int, float))})
    if not vals:
        return "? rows"
    return (f"{vals[0]:,} rows" if len(vals) == 1 else f"{vals[0]:,}-{vals[-1]:,} rows")


def span(values: Iterable, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    vals = [v * scale for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    if round(lo, digits) == round(hi, digits):
        return f"{lo:.{digits}f} {unit}"
    return f"{lo:.{digits}f}-{hi:.{digits}f} {unit}"


def secs(value, digits: int = 2) -> str:
    """`1.25 s`, or `? s` when not recorded."""
    return f"{value:.{digits}f} s" if isinstance(value, (int, float)) else "? s"


def ms(value) -> str:
    """Seconds as `125 ms`, or `? ms` when not recorded."""
    return f"{value * 1000:.0f} ms" if isinstance(value, (int, float)) else "? ms"


def pairs(snaps: Iterable[dict]) -> str:
    return ", ".join(f"{x['children']}/{x['zombies']}" for x in snaps)


def short_exc(name: str | None) -> str:
    return (name or "-").replace("timeout_decorator.timeout_decorator.", "timeout_decorator.")


def joined(items: Iterable[str | None]) -> str:
    items = list(dict.fromkeys("not run" if item is None else item for item in items))
    return ", ".join(items)


# --- verdict rows ---------------------------------------------------------------------------------


def gap_text(items: list[tuple[str, str]]) -> str:
    return "; ".join(f"`{job_id}`: {reason}" for job_id, reason in items)


def unmeasured(reason: str, facts: dict | None = None, measured: list | None = None) -> dict:
    return {"verdict": UNMEASURED, "summary": reason, "why": reason, "measured": measured or [reason],
            "facts": facts or {}}


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
