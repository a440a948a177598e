"""Claim 7: under forkserver/spawn the target is pickled by name; under fork anything goes."""

from __future__ import annotations

import pytest

from claims_helpers import CAVEAT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interp", ["host", "gil", "nogil"])
def test_what_each_start_method_accepts(claims_run, interp):
    claims_run.need(interp)
    r = claims_run.job(f"pickling-{interp}")["result"]
    got = {(x["start_method"], x["variant"]): (x["outcome"], x["exception_type"]) for x in r["results"]}
    local_error = "AttributeError" if r["python"].startswith("3.11") else "_pickle.PicklingError"
    for variant in ("top_level", "decorated_in_place", "nested", "lambda", "parent_only"):
        assert got[("fork", variant)] == ("ok", None), variant
    assert got[("forkserver", "top_level")] == ("ok", None)
    assert got[("forkserver", "decorated_in_place")] == ("error", "_pickle.PicklingError")
    assert got[("forkserver", "nested")] == ("error", local_error)
    assert got[("forkserver", "lambda")] == ("error", local_error)
    # the child cannot find the function, dies, and the parent reports a timeout
    assert got[("forkserver", "parent_only")] == ("timeout", "timeout_decorator.timeout_decorator.TimeoutError")


def test_verdict(claims_run):
    claims_run.need("gil")
    c = claims_run.claim(7)
    assert c["verdict"] == CAVEAT, c
    assert c["facts"]["decorated_in_place_fails"] and c["facts"]["parent_only_times_out"]
