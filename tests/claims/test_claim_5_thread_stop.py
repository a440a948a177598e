"""Claim 5, per workload: a thread's async exception lands only when the C call returns; only DuckDB's and sqlite3's own interrupts stop theirs."""

from __future__ import annotations

import pytest

import labtest
from claims_helpers import CAVEAT, HOLDS

pytestmark = pytest.mark.slow

INTERPS = ["host", "gil", "nogil"]
WATCHDOG = "app.experiments.claims.WatchdogTimeout"
OTHERS = ["sqlite", "numpy", "builtin", "pyarrow"]
VERDICTS = {"duckdb": CAVEAT, "sqlite": CAVEAT, "numpy": HOLDS, "builtin": HOLDS, "pyarrow": HOLDS}


@pytest.mark.parametrize("interp", INTERPS)
def test_async_exception_waits_for_the_query_interrupt_does_not(claims_run, interp):
    """DuckDB: the watchdog's exception lands once the query did its work; `con.interrupt()` stops it at the deadline."""
    claims_run.need(interp)
    r = claims_run.job(f"thread-stop-{interp}")["result"]
    a, i = r["async_exc"], r["interrupt"]
    # the premise: the calibrated query outlasted its deadline (else the timer never fired)
    assert r["rows_requested"] == "auto" and r["calibration"]["rows_per_second"] > 0, r["calibration"]
    assert a["watchdog_ran_at"] is not None and r["query_alone"] > 2 * r["deadline"], (
        f"premise failed: {r['rows']:,} rows ran {r['query_alone']} s alone (expected {r['expected_seconds']} s), "
        f"deadline {r['deadline']} s")
    assert a["exception_type"] == WATCHDOG
    late = labtest.threshold("LAB_TEST_MAX_TIMER_LATENESS", 0.5)
    assert a["watchdog_late"] < late, "DuckDB releases the GIL: the timer thread runs on time"
    # it landed once the query had done (nearly) all its work: CPU, not wall time, on a busy machine
    assert a["cpu"] >= 0.5 * r["query_alone_cpu"], (a, r["query_alone_cpu"])
    assert i["exception_type"] == "_duckdb.InterruptException"
    assert i["overshoot"] < labtest.threshold("LAB_TEST_MAX_INTERRUPT_OVERSHOOT", 0.5), i


@pytest.mark.parametrize("workload", OTHERS)
@pytest.mark.parametrize("interp", INTERPS)
def test_async_exception_lands_only_when_the_workload_call_returns(claims_run, interp, workload):
    """Every other workload, sized by its own calibration: the watchdog's exception lands once the call has used (nearly) all its CPU."""
    claims_run.need(interp)
    r = claims_run.job(f"thread-stop-{interp}-{workload}")["result"]
    assert not r.get("import_error"), r["import_error"]  # the lab's venvs install requirements/optional.txt
    a = r["async_exc"]
    assert r["rows_requested"] == "auto" and r["calibration"]["workload"] == workload, r["calibration"]
    assert r["calibration"]["rows_per_second"] > 0 and r["query_alone"] >= 2 * r["deadline"], r
    assert a["exception_type"] == WATCHDOG, a
    assert a["cpu"] >= 0.5 * r["query_alone_cpu"], (a, r["query_alone_cpu"])
    assert a["overshoot"] > 0, a  # after the deadline: when the call returned


@pytest.mark.parametrize("interp", INTERPS)
def test_a_gil_holding_call_delays_the_timer_thread_only_with_the_gil(claims_run, interp):
    """The builtin holds the GIL: on the GIL builds the watchdog thread itself runs only once it returns, on 3.14t on time."""
    claims_run.need(interp)
    r = claims_run.job(f"thread-stop-{interp}-builtin")["result"]
    a = r["async_exc"]
    if r["gil_enabled"]:
        # could not even run until the builtin returned (None: cancelled before it ever ran)
        assert a["watchdog_late"] is None or a["watchdog_late"] > r["deadline"], a
    else:
        assert a["watchdog_late"] < labtest.threshold("LAB_TEST_MAX_TIMER_LATENESS", 0.5), a


@pytest.mark.parametrize("interp", INTERPS)
def test_each_workloads_own_interrupt(claims_run, interp):
    """sqlite3's `Connection.interrupt()` stops it at the deadline; pyarrow's SIGINT is handled only when the kernel returns; numpy and the builtin have none."""
    claims_run.need(interp)
    sqlite = claims_run.job(f"thread-stop-{interp}-sqlite")["result"]
    i = sqlite["interrupt"]
    assert (i["outcome"], i["exception_type"], i["exception_message"]) == ("timeout", "sqlite3.OperationalError",
                                                                        "interrupted"), i
    assert i["overshoot"] < labtest.threshold("LAB_TEST_MAX_INTERRUPT_OVERSHOOT", 0.5), i
    arrow = claims_run.job(f"thread-stop-{interp}-pyarrow")["result"]
    i = arrow["interrupt"]
    assert i["exception_type"] == "app.measure.workloads.LabInterrupt" and i["cpu"] >= 0.5 * arrow["query_alone_cpu"], i
    for workload in ("numpy", "builtin"):
        assert claims_run.job(f"thread-stop-{interp}-{workload}")["result"]["interrupt"] is None


def test_verdict(claims_run):
    """One verdict per workload, DuckDB first; the claim holds with a caveat over them all."""
    c = claims_run.claim(5)
    assert c["verdict"] == CAVEAT, c["summary"]
    # on every interpreter the run had (run_claims checked them against the disk), not on none of them
    interps = sorted(claims_run.data["interpreters"]["available"])
    assert sorted(c["facts"]["async_late"]) == sorted(c["facts"]["interrupt_fast"]) == interps, c["facts"]
    assert {w: row["verdict"] for w, row in c["workloads"].items()} == VERDICTS, c["summary"]
    md = (claims_run.run_dir / "claims.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 5 | ")]
    assert len(rows) == len(VERDICTS)
    for line, (w, verdict) in zip(rows, VERDICTS.items()):  # DuckDB first, then app/kernel/workload_axis.py's order
        assert f"workload `{w}`" in line.lower() and f"| **{verdict}** |" in line, (w, line)
