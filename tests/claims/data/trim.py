"""Make a recorded claims.json small enough to keep as a test input: `python trim.py SRC DEST`.

Keeps everything the verdict rules (scripts/labctl/claims_report/) read: the plan, settings,
interpreters, every job's spec, error, result, sizing, premise re-run and leftover counts, and of
each Celery record the outcome, exception, timings, sizing and the two process snapshots (each
process reduced to pid, role and status). Drops what they do not read: the baseline snapshot,
resource samples, per-process CPU lists, leftover process lists and the verdicts computed at
record time (the tests compute them again with the rules under test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RECORD_KEYS = {
    "iteration", "outcome", "exception_type", "exception_message", "task_state", "pid", "python", "build",
    "duckdb", "gil_enabled", "start_method", "strategy", "timeout", "rows", "rows_requested", "query_seconds",
    "expected_seconds", "calibration", "elapsed", "overshoot", "cpu_after_deadline", "cleanup", "immediate",
    "settled", "settle_seconds", "children_allowed",
}
SNAPSHOT_KEYS = {"children", "zombies", "roles"}
PROCESS_KEYS = {"role", "status"}  # of the task processes only: the rules count them (roles has the rest)
CALIBRATION_KEYS = {"rows_per_second", "source", "python", "build"}


def trim_snapshot(snap: dict | None) -> dict | None:
    if not snap:
        return snap
    out = {k: v for k, v in snap.items() if k in SNAPSHOT_KEYS}
    out["processes"] = [{k: p.get(k) for k in PROCESS_KEYS} for p in snap.get("processes", [])
                        if p.get("role") == "task"]
    return out


def trim_record(r: dict) -> dict:
    out = {k: v for k, v in r.items() if k in RECORD_KEYS}
    for which in ("immediate", "settled"):
        if which in out:
            out[which] = trim_snapshot(out[which])
    if out.get("calibration"):
        out["calibration"] = {k: v for k, v in out["calibration"].items() if k in CALIBRATION_KEYS}
    return out


def trim(data: dict) -> dict:
    data = dict(data)
    data.pop("claims", None)
    jobs = {}
    for job_id, d in data["jobs"].items():
        d = dict(d)
        if d.get("records") is not None:
            d["records"] = [trim_record(r) for r in d["records"]]
        if d.get("leftovers"):
            d["leftovers"] = {k: v for k, v in d["leftovers"].items() if k != "processes"}
        jobs[job_id] = d
    data["jobs"] = jobs
    return data


def dumps(data: dict) -> str:
    """JSON with one line per job (small, and a diff still shows which job changed)."""
    rest = json.dumps({k: v for k, v in data.items() if k != "jobs"}, indent=1, sort_keys=True)
    jobs = ",\n".join(f"  {json.dumps(job_id)}: {json.dumps(d, sort_keys=True, separators=(',', ':'))}"
                      for job_id, d in sorted(data["jobs"].items()))
    return '{\n "jobs": {\n' + jobs + "\n },\n" + rest[2:] + "\n"


def main(argv: list[str]) -> int:
    src, dest = map(Path, argv)
    dest.write_text(dumps(trim(json.loads(src.read_text()))))
    print(f"{dest}: {dest.stat().st_size:,} bytes (from {src.stat().st_size:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
