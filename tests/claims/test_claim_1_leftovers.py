"""Claim 1: the process fallback leaves children (fork) or a momentary zombie (forkserver) per iteration."""

from __future__ import annotations

import pytest

from claims_helpers import CAVEAT, TIMEOUT_ERROR, roles, settled_live_tasks

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interp", ["host", "gil"])
def test_under_fork_live_children_pile_up_and_keep_sigterm_handlers(claims_run, interp):
    claims_run.need(interp)
    recs = claims_run.records(f"{interp}-fork-process")  # iterations 1..N of the plan
    n = claims_run.iterations(f"{interp}-fork-process")
    assert {r["outcome"] for r in recs} == {"timeout"}
    assert {r["exception_type"] for r in recs} == {TIMEOUT_ERROR}
    # one more live child after every iteration, none of them a zombie
    assert [settled_live_tasks(r) for r in recs] == list(range(1, n + 1))
    assert [r["settled"]["zombies"] for r in recs] == [0] * n
    assert all(r["cpu_after_deadline"] > 0 for r in recs), [r["cpu_after_deadline"] for r in recs]
    left = claims_run.job(f"{interp}-fork-process")["leftovers"]
    assert left["alive"] == len(recs) and left["zombies"] == 0
    assert left["sigterm_caught"] == len(recs), left["processes"]  # Celery's SIGTERM handler, inherited


@pytest.mark.parametrize("interp", ["host", "gil"])
def test_under_forkserver_the_zombie_is_momentary(claims_run, interp):
    claims_run.need(interp)
    recs = claims_run.records(f"{interp}-forkserver-process")
    assert {r["exception_type"] for r in recs} == {TIMEOUT_ERROR}
    for r in recs:
        assert r["immediate"]["children"] in (2, 3) and r["immediate"]["zombies"] <= 1, r["immediate"]
        assert (r["settled"]["children"], r["settled"]["zombies"]) == (2, 0)
        assert roles(r, "settled") == {"forkserver": 1, "resource_tracker": 1}
    assert claims_run.job(f"{interp}-forkserver-process")["leftovers"]["alive"] == 0


def test_verdict(claims_run):
    claims_run.need("host")  # the same verdict on the host's python3 alone (no 3.14 builds)
    c = claims_run.claim(1)
    assert c["verdict"] == CAVEAT, c
    assert c["facts"]["accumulates_under"] == ["fork"] and c["facts"]["cleared_under"] == ["forkserver"]
