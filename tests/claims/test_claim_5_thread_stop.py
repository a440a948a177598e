"""Claim 5: a thread cannot stop a C call with an async exception, but con.interrupt() stops DuckDB."""

from __future__ import annotations

import pytest

import labtest
from claims_helpers import CAVEAT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("interp", ["host", "gil", "nogil"])
def test_async_exception_waits_for_the_query_interrupt_does_not(claims_run, interp):
    claims_run.need(interp)
    r = claims_run.job(f"thread-stop-{interp}")["result"]
    a, i = r["async_exc"], r["interrupt"]
    # the premise: the calibrated query outlasted its deadline (else the timer never fired)
    assert r["rows_requested"] == "auto" and r["calibration"]["rows_per_second"] > 0, r["calibration"]
    assert a["watchdog_ran_at"] is not None and r["query_alone"] > 2 * r["deadline"], (
        f"premise failed: {r['rows']:,} rows ran {r['query_alone']} s alone (expected {r['expected_seconds']} s), "
        f"deadline {r['deadline']} s")
    assert a["exception_type"] == "app.experiments.WatchdogTimeout"
    late = labtest.threshold("LAB_TEST_MAX_TIMER_LATENESS", 0.5)
    assert a["watchdog_late"] < late, "DuckDB releases the GIL: the timer thread runs on time"
    # it landed once the query had done (nearly) all its work: CPU, not wall time, on a busy machine
    assert a["cpu"] >= 0.5 * r["query_alone_cpu"], (a, r["query_alone_cpu"])
    assert i["exception_type"] == "_duckdb.InterruptException"
    assert i["overshoot"] < labtest.threshold("LAB_TEST_MAX_INTERRUPT_OVERSHOOT", 0.5), i


@pytest.mark.parametrize("interp", ["host", "gil", "nogil"])
def test_a_gil_holding_call_delays_the_timer_thread_only_with_the_gil(claims_run, interp):
    claims_run.need(interp)
    r = claims_run.job(f"thread-stop-{interp}")["result"]
    sp = r["spin_async_exc"]
    # sized from the builtin's own measured rate on this interpreter, it outlasts its deadline
    assert r["spin_calibration"]["items_per_second"] > 0 and r["spin_alone"] > sp["deadline"], (r["spin_calibration"], sp)
    assert sp["exception_type"] == "app.experiments.WatchdogTimeout"
    assert sp["cpu"] >= 0.5 * r["spin_alone_cpu"], (sp, r["spin_alone_cpu"])  # only once the call had ended
    if r["gil_enabled"]:
        # could not even run until the builtin returned (None: cancelled before it ever ran)
        assert sp["watchdog_late"] is None or sp["watchdog_late"] > sp["deadline"], sp
    else:
        assert sp["watchdog_late"] < labtest.threshold("LAB_TEST_MAX_TIMER_LATENESS", 0.5), sp


def test_verdict(claims_run):
    c = claims_run.claim(5)
    assert c["verdict"] == CAVEAT, c
    assert sorted(c["facts"]["async_late"]) == sorted(c["facts"]["interrupt_fast"])
