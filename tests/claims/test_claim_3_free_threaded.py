"""Claim 3: with the GIL off, the free-threaded worker leaves the same processes as the GIL build."""

from __future__ import annotations

import pytest

from claims_helpers import HOLDS, TIMEOUT_ERROR, settled_live_tasks

pytestmark = [pytest.mark.slow, pytest.mark.built]


def test_gil_stays_off_in_the_worker(claims_run):
    claims_run.need("nogil")
    for method in ("fork", "forkserver"):
        recs = claims_run.records(f"nogil-{method}-process")
        assert {r["build"] for r in recs} == {"nogil"}
        assert {r["gil_enabled"] for r in recs} == {False}, "PYTHON_GIL=0 should keep the GIL off after import duckdb"
        assert {r["exception_type"] for r in recs} == {TIMEOUT_ERROR}


def test_same_leftovers_as_the_gil_build(claims_run):
    claims_run.need("nogil")
    fork = claims_run.records("nogil-fork-process")  # iterations 1..N of the plan
    assert [settled_live_tasks(r) for r in fork] == list(range(1, claims_run.iterations("nogil-fork-process") + 1))
    for r in claims_run.records("nogil-forkserver-process"):
        assert (r["settled"]["children"], r["settled"]["zombies"]) == (2, 0)


def test_verdict(claims_run):
    claims_run.need("nogil", "gil")
    c = claims_run.claim(3)
    assert c["verdict"] == HOLDS, c
    assert c["facts"]["differs_from_gil_build"] == []
