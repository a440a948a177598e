"""app/measure/calibrate.py for every workload: each one's call sized from its measured speed runs about as long as asked."""

from __future__ import annotations

import time

import pytest

import labtest  # also puts the repo on sys.path
from app.measure import calibrate, workloads
from app.kernel.workload_axis import WORKLOAD_NAMES, WORKLOADS

FACTOR = labtest.threshold("LAB_TEST_CALIBRATION_FACTOR", 3.0)


@pytest.mark.parametrize("workload", [w for w in WORKLOAD_NAMES if w != "duckdb"])
def test_a_call_sized_for_half_a_second_runs_about_half_a_second(workload):
    """rows_for(0.5) on a fresh measurement of the workload gives a call of a third to three times 0.5 s."""
    labtest.need_module(WORKLOADS[workload].module)
    cal = calibrate.measure(1, workload)
    size = cal.rows_for(0.5)
    t = time.perf_counter()
    workloads.get(workload).run(size)
    took = time.perf_counter() - t
    assert 0.5 / FACTOR < took < 0.5 * FACTOR, f"{size:,} {cal.unit} took {took:.3f}s; {cal}"
    assert (cal.workload, cal.unit) == (workload, WORKLOADS[workload].unit)
    assert cal.describe().startswith(f"{workload}: ") and f"{cal.unit}/s" in cal.describe()


def test_each_workload_has_its_own_cached_calibration(tmp_path):
    """cached(folder=...) writes one file per workload; DuckDB's keeps its name, a second read is the cached one."""
    calibrate.reset()
    try:
        sqlite = calibrate.cached(1, tmp_path, workload="sqlite")
        builtin = calibrate.cached(1, tmp_path, workload="builtin")
        calibrate.reset()
        again = calibrate.cached(1, tmp_path, workload="sqlite")
    finally:
        calibrate.reset()
    names = sorted(p.name for p in tmp_path.glob("calibration-*.json"))
    assert len(names) == 2 and names[0].startswith("calibration-builtin") and names[1].startswith("calibration-sqlite")
    assert again.source == "cached" and again.rows_per_second == sqlite.rows_per_second
    assert sqlite.rows_per_second != builtin.rows_per_second
