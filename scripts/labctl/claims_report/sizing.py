"""How each job's query was sized, from its own records: the rows asked for and used, the query's measured
speed on the job's interpreter, the seconds that speed predicts."""

from __future__ import annotations

from .helpers import PREMISE, rows_text, secs, span
from .jobs import ordered, stop_workload


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
                     f"{secs(r.get('expected_seconds'))} expected")}


def describe_sizing(sz: dict | None) -> str:
    """`DUCKDB_ROWS=auto: 305M rows/s -> 3,050,000,000 rows, 10.00 s expected`."""
    if not sz:
        return "sizing not recorded"
    if not sz.get("query"):
        return sz.get("note", "no query")
    asked = "DUCKDB_ROWS=auto" if sz.get("rows_requested") == "auto" else f"DUCKDB_ROWS={sz.get('rows_requested')}"
    text = (f"{asked}: {span(sz['rows_per_second'], 'M rows/s', 1e-6, 0)} measured -> {rows_text(sz['rows'])}, "
            f"{span(sz['expected_seconds'])} expected")
    b = sz.get("builtin")
    if b and b.get("items_per_second"):
        text += (f"; builtin {b['items_per_second'] / 1e6:.0f}M items/s -> {b['items']:,} items, "
                 f"{secs(b['expected_seconds'])} expected")
    return text


def rerun_note(d: dict) -> str:
    """`(first attempt: premise failed: ...; re-run with N rows)` for a job that ran twice."""
    first = d.get("premise_rerun")
    if not first:
        return ""
    sz = job_sizing(d) or {}
    return f" (first attempt: {PREMISE}: {first['reason']}; re-run with {rows_text(sz.get('rows') or [])})"


def sizing_by_interp(data: dict) -> dict[str, dict]:
    """Per interpreter, over its jobs with a query: measured speeds, rows used, seconds expected."""
    out: dict[str, dict] = {}
    for _, d in ordered(data):
        sz = d.get("sizing") or job_sizing(d)
        if not sz or not sz.get("query"):
            continue
        o = out.setdefault(d["job"]["interp"], {"rows_per_second": [], "rows": [], "expected_seconds": []})
        for k in o:
            o[k] += [v for v in sz.get(k) or [] if v is not None]
    return out
