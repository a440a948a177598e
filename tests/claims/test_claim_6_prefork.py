"""Claim 6: the prefork pool refuses the multiprocessing fallback; the solo pool runs it."""

from __future__ import annotations

import pytest

from claims_helpers import DAEMONIC, HOLDS, TIMEOUT_ERROR

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interp,method", [("host", "fork"), ("gil", "forkserver")])
def test_prefork_refuses_solo_runs(claims_run, interp, method):
    claims_run.need(interp)
    for r in claims_run.records(f"{interp}-{method}-prefork-process"):  # exactly the plan's iterations
        assert (r["outcome"], r["exception_type"], r["exception_message"]) == ("error", "AssertionError", DAEMONIC)
        assert r["start_method"] == method
    solo = claims_run.records(f"{interp}-{method}-process")
    assert {(r["outcome"], r["exception_type"]) for r in solo} == {("timeout", TIMEOUT_ERROR)}


def test_verdict(claims_run):
    c = claims_run.claim(6)
    assert c["verdict"] == HOLDS, c
