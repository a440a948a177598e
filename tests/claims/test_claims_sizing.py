"""How `scripts/lab claims` sizes its queries: DUCKDB_ROWS=auto by default, an explicit count wins.

Pure: parses settings and plans jobs, starts nothing (no builds, broker or Docker needed).
"""

from __future__ import annotations

import pytest

from app.kernel.envparse import ConfigError
from app.kernel.workload_axis import WORKLOAD_NAMES
from labctl import claims

HAVE_ALL = {"host": True, "gil": True, "nogil": True}


def test_default_is_auto():
    """Without DUCKDB_ROWS the run sizes every query by calibration (rows None) and says so in its settings."""
    s = claims.parse_args([], {})
    assert s.rows is None
    thread_stop = [j for j in claims.plan(s, HAVE_ALL) if isinstance(j, claims.Plain) and j.experiment == "thread-stop"]
    assert {j.interp for j in thread_stop} == {"host", "gil", "nogil"}
    assert sorted(j.params["workload"] for j in thread_stop) == sorted(3 * list(WORKLOAD_NAMES))
    for job in thread_stop:  # sized inside each interpreter from its own calibration, to a target duration
        assert job.params["rows"] is None
        if job.params["workload"] == "duckdb":
            assert job.id == f"thread-stop-{job.interp}"
            assert job.params["seconds"] == claims.thread_stop_seconds(s.timeout) == 4.0
            assert job.params["seconds"] >= 2 * job.params["deadline"]
        else:  # the other workloads: a shorter call, its deadline a quarter into it at most (app/experiments/claims.py)
            assert job.id == f"thread-stop-{job.interp}-{job.params['workload']}"
            assert job.params["seconds"] == claims.WORKLOAD_STOP_SECONDS and job.params["deadline"] == s.timeout


@pytest.mark.parametrize("value", ["auto", "AUTO"])
def test_auto_spelled_out(value):
    """`DUCKDB_ROWS=auto` is the default spelled out."""
    assert claims.parse_args([f"DUCKDB_ROWS={value}"], {}).rows is None


def test_explicit_rows_win():
    """An explicit DUCKDB_ROWS reaches every job's DuckDB query unchanged (the thread-stop experiment included); the other workloads stay calibrated."""
    s = claims.parse_args(["DUCKDB_ROWS=10000000"], {})
    assert s.rows == 10_000_000
    for job in claims.plan(s, HAVE_ALL):
        if isinstance(job, claims.Plain) and job.experiment == "thread-stop":
            assert job.params["rows"] == (10_000_000 if job.params["workload"] == "duckdb" else None), job


@pytest.mark.parametrize("value", ["5", "lots", "1e12", "100000000001"])
def test_bad_rows_state_the_range(value):
    """A bad DUCKDB_ROWS is one message naming it and the accepted range, auto included."""
    with pytest.raises(ConfigError) as err:
        claims.parse_args([f"DUCKDB_ROWS={value}"], {})
    text = str(err.value)
    assert "\n" not in text and text.startswith("DUCKDB_ROWS=")
    assert "from 10000000 to 100000000000" in text and "auto" in text, text


def test_premise_rerun_is_four_times_larger():
    """A job whose query ended before its deadline runs again with 4x the rows it used (workers and thread-stop)."""
    s = claims.parse_args([], {})
    jobs = {j.id: j for j in claims.plan(s, HAVE_ALL)}
    worker = claims._larger(jobs["gil-fork-process"], {"job": {"kind": "worker"}, "records": [
        {"rows": 30_000_000, "calibration": {"rows_per_second": 3e8}, "expected_seconds": 0.1}]})
    assert worker.rows == 120_000_000 and worker.id == "gil-fork-process"
    plain = claims._larger(jobs["thread-stop-gil"], {"job": {"kind": "plain", "experiment": "thread-stop"}, "result": {
        "rows": 10_000_000, "calibration": {"rows_per_second": 3e8}, "expected_seconds": 0.03}})
    assert plain.params["rows"] == 40_000_000 and plain.params["deadline"] == s.timeout
    sqlite = claims._larger(jobs["thread-stop-gil-sqlite"], {"job": {"kind": "plain", "experiment": "thread-stop",
                                                                     "params": {"workload": "sqlite"}},
                                                             "result": {"workload": "sqlite", "rows": 2_000_000,
                                                                        "unit": "rows", "calibration": {
                                                                            "rows_per_second": 2e6}}})
    assert sqlite.params == {**jobs["thread-stop-gil-sqlite"].params, "rows": 8_000_000}  # its own size, 4x
