"""Claim 2: reaping leaves 0 zombies; children=2 only under forkserver, where it was not needed."""

from __future__ import annotations

import pytest

from claims_helpers import CAVEAT, roles

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interp", ["host", "gil"])
def test_under_fork_reaping_needs_sigkill_and_leaves_nothing(claims_run, interp):
    claims_run.need(interp)
    recs = claims_run.records(f"{interp}-fork-cleanup")  # exactly the plan's iterations: the loop never runs on nothing
    for r in recs:
        assert (r["settled"]["children"], r["settled"]["zombies"]) == (0, 0), r["settled"]
        # the child ignores SIGTERM (Celery's handler): only the SIGKILL step removes it
        assert r["cleanup"] == {"terminated": 1, "killed": 1, "remaining": 0}, r["cleanup"]
    assert claims_run.job(f"{interp}-fork-cleanup")["leftovers"]["alive"] == 0


@pytest.mark.parametrize("interp", ["host", "gil"])
def test_under_forkserver_children_2_are_the_helpers(claims_run, interp):
    claims_run.need(interp)
    for job in (f"{interp}-forkserver-cleanup", f"{interp}-forkserver-process"):
        for r in claims_run.records(job):  # exactly the plan's iterations
            assert (r["settled"]["children"], r["settled"]["zombies"]) == (2, 0), (job, r["settled"])
            assert roles(r, "settled") == {"forkserver": 1, "resource_tracker": 1}
    for r in claims_run.records(f"{interp}-forkserver-cleanup"):
        assert r["cleanup"]["killed"] == 0 and r["cleanup"]["remaining"] == 0, r["cleanup"]


def test_verdict(claims_run):
    claims_run.need("host")  # the same verdict on the host's python3 alone (no 3.14 builds)
    c = claims_run.claim(2)
    assert c["verdict"] == CAVEAT, c
    assert c["facts"]["all_zero"] is True
    assert c["facts"]["cleanup_not_needed_under"] == ["forkserver"]
