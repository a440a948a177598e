"""Claim 8: which mitigations work, each measured in a real Celery worker.

The Celery mitigations (time limits, --max-tasks-per-child) run on the 3.14 gil build when it is
there, else on the host's python3 (labctl.claims.plan): these tests check whichever ran, so a
machine without the 3.14 builds still checks what it measured, and say which one it was (a
warning in the summary when it was the host's); under CI=true the gil build must be there.
"""

from __future__ import annotations

import platform
import warnings

import pytest

import labtest
from claims_helpers import DAEMONIC, FAILS
from labctl import paths

pytestmark = pytest.mark.slow


def mitigation_interp(claims_run, record_property) -> str:
    """Where claim 8's Celery mitigations ran: the 3.14 gil build, else the host's python3, said out loud."""
    if claims_run.has("gil"):
        interp, python = "gil", paths.DEFAULT_PYTHON_VERSION
    else:
        why = claims_run.data["interpreters"]["missing"].get("gil")
        # CI must measure the article's build (labtest.need's rule); elsewhere the host's is a stand-in, named
        if labtest.CI and not labtest.NEWCOMER:
            pytest.fail(f"CI=true but no gil interpreter ({why}): claim 8's mitigations ran on the host's python3")
        warnings.warn(f"claim 8's Celery mitigations ran on the host's python3 {platform.python_version()} "
                      f"in place of the 3.14 gil build: {why}", stacklevel=2)
        interp, python = "host", platform.python_version()
    record_property("mitigations_interpreter", f"{interp} (CPython {python})")
    return interp


def ran_on(records: list[dict], interp: str) -> None:
    """Every record came from `interp`: the 3.14 build, or this machine's python3 (the host venv's and the test's)."""
    python = paths.DEFAULT_PYTHON_VERSION if interp == "gil" else platform.python_version()
    assert {(r["python"], r["build"]) for r in records} == {(python, "gil")}, (interp, [r["python"] for r in records])


@pytest.mark.parametrize("interp", ["host", "gil", "nogil"])
def test_interrupt_from_a_thread(claims_run, interp):
    claims_run.need(interp)
    for r in claims_run.records(f"{interp}-interrupt"):
        assert (r["outcome"], r["exception_type"]) == ("timeout", "_duckdb.InterruptException")
        assert r["overshoot"] < labtest.threshold("LAB_TEST_MAX_INTERRUPT_OVERSHOOT", 0.5)
        assert r["settled"]["children"] == 0


def test_time_limits_in_prefork_and_not_in_solo(claims_run, record_property):
    """Celery's time limits stop the query in the prefork pool; the solo pool lets it run past the hard limit."""
    interp = mitigation_interp(claims_run, record_property)
    prefork = claims_run.records(f"{interp}-prefork-time-limit")
    ran_on(prefork, interp)
    for r in prefork:
        assert (r["outcome"], r["exception_type"], r["exception_message"]) == ("timeout", "RuntimeError", "Query interrupted")
    limits = claims_run.job(f"{interp}-solo-time-limit")["time_limits"]
    solo = claims_run.records(f"{interp}-solo-time-limit")
    ran_on(solo, interp)
    for r in solo:
        assert r["outcome"] == "ok", "the solo pool enforced a time limit"
        # the premise: the query outlasted the hard limit, so the limit had every chance to fire
        assert r["elapsed"] > limits["time_limit"], (r["elapsed"], limits, r["expected_seconds"])


def test_max_tasks_per_child(claims_run, record_property):
    """--max-tasks-per-child: ignored by solo, prefork refuses the plain task, and with children allowed nothing is left."""
    interp = mitigation_interp(claims_run, record_property)
    # solo ignores it: same process, children pile up
    solo = claims_run.records(f"{interp}-solo-mtpc1-process")  # every planned iteration, so never empty
    ran_on(solo, interp)
    assert len({r["pid"] for r in solo}) == 1
    # (running, or zombies once a short query finished on its own: nobody waits for them)
    n = claims_run.iterations(f"{interp}-solo-mtpc1-process")
    assert [r["settled"]["roles"]["task"] for r in solo] == list(range(1, n + 1))
    # prefork: the plain task cannot start the child at all
    for r in claims_run.records(f"{interp}-prefork-mtpc1-process"):
        assert (r["exception_type"], r["exception_message"]) == ("AssertionError", DAEMONIC)
    # with the daemon flag cleared under fork, each task gets a new pool process and nothing is left
    allowed = claims_run.records(f"{interp}-fork-prefork-mtpc1-allowed")
    assert len({r["pid"] for r in allowed}) == len(allowed) > 1
    assert {r["outcome"] for r in allowed} == {"timeout"}
    left = claims_run.job(f"{interp}-fork-prefork-mtpc1-allowed")["leftovers"]
    assert (left["alive"], left["zombies"]) == (0, 0), left


def test_verdict(claims_run):
    c = claims_run.claim(8)
    assert c["verdict"] == FAILS, c
    assert c["facts"]["mitigations"] == {
        "reaping": "works",
        "Celery time limits": "works in prefork only",
        "--max-tasks-per-child": "does not work",
        "con.interrupt()": "works",
    }
    assert not c["facts"].get("not_measured"), c["facts"]["not_measured"]
