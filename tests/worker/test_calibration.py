"""app/measure/calibrate.py: the query's measured speed sizes the workload, on any machine.

Real DuckDB on this interpreter; the lab runs at the end use real workers and a real broker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import labtest
from app.measure import calibrate
from app.kernel import defaults
from app import query


# Both ways, for a median of three measurements against a median of three timed right after: tight
# enough that a calibration off by 2x fails, loose enough for a core taken now and then.
FACTOR = labtest.threshold("LAB_TEST_CALIBRATION_FACTOR", 1.5)
# A worker's measurement, made while the run's other worker started on the same two cores, against
# one timed here later: the load differed, so only a gross error shows.
RUN_FACTOR = labtest.threshold("LAB_TEST_RUN_CALIBRATION_FACTOR", 3.0)
# What a measurement may cost, in units of what its own loop does (a core taken meanwhile slows it).
COST_FACTOR = labtest.threshold("LAB_TEST_CALIBRATION_COST_FACTOR", 3.0)


def timed_execute(rows: int) -> float:
    """Seconds a query of `rows` rows takes here, timed as the probe times it (warmed up, on an open
    connection): the median of three."""
    con = query.connect(1)
    try:
        query.execute(con, calibrate.PROBE_START_ROWS)
        took = []
        for _ in range(3):
            t = time.perf_counter()
            query.execute(con, rows)
            took.append(time.perf_counter() - t)
        return sorted(took)[1]
    finally:
        con.close()


def test_a_query_sized_for_n_seconds_runs_about_n_seconds():
    """rows_for(0.5) gives a query of about 0.5 s by the clock, and seconds_for predicts another size's time as well."""
    # the median of three measurements: one taken while a core was busy elsewhere is outvoted
    cal = sorted((calibrate.measure(1) for _ in range(3)), key=lambda c: c.rows_per_second)[1]
    rows = cal.rows_for(0.5)
    took = timed_execute(rows)
    assert 0.5 / FACTOR < took < 0.5 * FACTOR, f"{rows:,} rows took {took:.3f}s; calibration {cal}"
    # a size rows_for did not make, so seconds_for is checked against the clock and not against rows_for
    other = 4 * cal.probe_rows
    other_took = timed_execute(other)
    assert other_took / FACTOR < cal.seconds_for(other) < other_took * FACTOR, (other, other_took, cal)


def test_the_measurement_is_cheap_and_describes_itself():
    """One calibration costs a few of its own probe calls and names its interpreter, DuckDB and threads."""
    cal = calibrate.measure(1)
    # what calibrate.probe's loop does, in units of its final call: a warm-up no longer than it, growth
    # steps of at least 1.5x each (together at most 3 of it), then PROBE_REPEATS - 1 more
    budget = (calibrate.PROBE_REPEATS + 3) * cal.probe_seconds
    assert cal.measured_seconds < COST_FACTOR * budget, cal
    assert cal.probe_seconds >= calibrate.PROBE_SECONDS * 0.5 and cal.probe_rows >= calibrate.PROBE_START_ROWS
    line = cal.describe()
    assert "M rows/s on CPython" in line and "threads=1" in line and cal.duckdb in line, line


def test_rows_stay_inside_the_accepted_range():
    """However fast or slow the machine, the sized query is a valid DUCKDB_ROWS."""
    cal = calibrate.measure(1)
    assert cal.rows_for(10**9) == defaults.DUCKDB_ROWS_RANGE[1]
    assert cal.rows_for(0) == defaults.DUCKDB_ROWS_RANGE[0]


def test_the_auto_target_outlasts_the_timeout_and_the_settle_window():
    """QUERY_SECONDS=auto: 20 timeouts, at least 2 s past the settle window; an explicit value wins."""
    assert calibrate.target_seconds(0.5, 0.5) == 10.0
    assert calibrate.target_seconds(0.01, 0.5) == 0.01 + 0.5 + defaults.QUERY_BEYOND_SETTLE
    assert calibrate.target_seconds(0.5, 0.5, 3.0) == 3.0


def test_workers_of_one_run_share_the_first_measurement(tmp_path):
    """With a cache folder, a second process reads the first one's calibration instead of measuring."""
    code = ("import json, sys; from app.measure import calibrate; "
            "print(json.dumps(calibrate.cached(1, sys.argv[1]).as_dict()))")
    outs = [json.loads(subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=labtest.REPO, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(2)]
    assert outs[0]["source"] == "measured" and outs[1]["source"] == "cached", outs
    assert outs[0]["rows_per_second"] == outs[1]["rows_per_second"]
    assert len(list(tmp_path.glob("calibration-*.json"))) == 1


@pytest.mark.slow
def test_every_record_and_the_summary_state_the_calibration(tmp_path):
    """A quick run on the defaults: each record carries rows/s, rows used and expected seconds; the summary a workload line."""
    run_dir, rec = labtest.quick_once(tmp_path, "gil")
    cal = rec["calibration"]
    assert rec["rows_requested"] == "auto" and rec["outcome"] == "timeout", rec
    assert rec["query_seconds"] == calibrate.target_seconds(rec["timeout"], rec["settle_seconds"])
    assert rec["rows"] == round(cal["rows_per_second"] * rec["query_seconds"])
    # the worker's expectation against the clock, scaled to its probe's size and timed here: the quick run's
    # worker and this test both run on this machine's python3 with the lab's DuckDB pin
    took = timed_execute(cal["probe_rows"])
    predicted = rec["expected_seconds"] * cal["probe_rows"] / rec["rows"]
    assert took / RUN_FACTOR < predicted < took * RUN_FACTOR, (predicted, took, cal)
    text = (run_dir / "summary.txt").read_text()
    assert f"workload: {rec['rows']:,} rows (DUCKDB_ROWS=auto, QUERY_SECONDS={rec['query_seconds']:g})" in text, text
    assert "calibration: " in labtest.worker_log(run_dir, "gil")


@pytest.mark.slow
def test_an_explicit_row_count_that_ends_in_time_is_said_plainly(tmp_path):
    """DUCKDB_ROWS too small for the deadline: the summary says nothing timed out and why, not 'no leak'."""
    run_dir, rec = labtest.quick_once(tmp_path, "gil", DUCKDB_ROWS="1000")
    assert (rec["outcome"], rec["rows"], rec["rows_requested"]) == ("ok", 1000, 1000), rec
    text = (run_dir / "summary.txt").read_text()
    assert "gil: nothing timed out: the query (1,000 rows, expected" in text, text
    assert "DUCKDB_ROWS is set explicitly" in text, text
