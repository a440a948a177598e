"""Verdicts and the table for `scripts/lab claims`, computed from what the jobs measured.

Every verdict is a rule over the measurements in claims.json, never typed in by hand. Each claim
comes back as: verdict, summary (the numbers, short, for the table), why (one sentence),
measured (one line per configuration, for the details section) and facts (the values the rule
looked at, which tests/claims/ pin).

No rule turns missing data into a reason. A job whose record is missing from claims.json, that
failed (its error), or that lacks an iteration's record is "not measured" with that reason; a
job whose premise failed (its query ended before its deadline, so nothing was timed out) is
"premise failed" with the numbers, never evidence for or against a claim. A claim with nothing
left to judge says "not measured" and why; a claim judged on part of its jobs names the rest.
tests/claims/test_claims_rules.py runs every rule on recorded claims.json files.

The modules, each importing only those above it: helpers (verdict words, text, verdict rows),
jobs (reading claims.json), sizing (how each query was sized), one per claim or group of claims
(leftovers: 1-3, gil_import: 4, thread_stop: 5, prefork: 6, pickling: 7, mitigations: 8, which
reads claim 2's verdict), and report (`verdicts`, `markdown`). This package hands on their names.
"""

from .gil_import import claim4
from .helpers import (CAVEAT, FAILS, HOLDS, INTERPS, METHOD_ORDER, PREMISE, PROCESS_STRATEGIES, UNMEASURED, gap_text,
                      joined, label, missing_interpreters, not_measured, pairs, short_exc, span, unmeasured, with_gaps)
from .jobs import (CLEANUP_GRACE_SECONDS, NOT_RECORDED, THREAD_STOP_MIN_DEADLINES, gaps, job_problem, pattern,
                   plain_jobs, planned, premise_failure, series, snap, stop_workload, worker_jobs)
from .leftovers import claim1, claim2, claim3
from .mitigations import claim8
from .pickling import claim7
from .prefork import DAEMONIC, claim6
from .report import CLAIM_FUNCTIONS, STATEMENTS, markdown, per_workload, verdicts, workload_text
from .sizing import describe_sizing, job_sizing, sizing_by_interp
from .thread_stop import FAST, INTERRUPT_NAMES, STOP_WORKLOADS, WATCHDOG_TIMEOUTS, claim5

__all__ = [
    "CAVEAT", "CLAIM_FUNCTIONS", "CLEANUP_GRACE_SECONDS", "DAEMONIC", "FAILS", "FAST", "HOLDS", "INTERPS",
    "INTERRUPT_NAMES", "METHOD_ORDER", "NOT_RECORDED", "PREMISE", "PROCESS_STRATEGIES", "STATEMENTS",
    "STOP_WORKLOADS", "THREAD_STOP_MIN_DEADLINES", "UNMEASURED", "WATCHDOG_TIMEOUTS", "claim1", "claim2", "claim3",
    "claim4", "claim5", "claim6", "claim7", "claim8", "describe_sizing", "gap_text", "gaps", "job_problem",
    "job_sizing", "joined", "label", "markdown", "missing_interpreters", "not_measured", "pairs", "pattern",
    "per_workload", "plain_jobs", "planned", "premise_failure", "series", "short_exc", "sizing_by_interp", "snap",
    "span", "stop_workload", "unmeasured", "verdicts", "with_gaps", "worker_jobs", "workload_text"
]
