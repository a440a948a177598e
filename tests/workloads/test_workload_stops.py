"""Every workload under every strategy that runs outside Celery, called in the test process (CPython 3.11 here,
a GIL build): which ones stop, what the caller sees, what is left and usable afterwards.

Real calls, nothing mocked; every size calibrated on this interpreter. Bounds overridable:
LAB_TEST_MAX_OVERSHOOT (seconds from the deadline to control back), LAB_TEST_GIL_HELD_SPEED and
LAB_TEST_GIL_FREE_SPEED (another thread's speed during the call, as a fraction of its speed alone).
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

import labtest  # also puts the repo on sys.path
from app.measure import calibrate, probe, workloads
from app import strategies
from app.cleanup import reap_tasks
from app.kernel.workload_axis import WORKLOAD_NAMES, WORKLOADS

TIMEOUT = 0.1
FACTOR = 6  # each call would run FACTOR x TIMEOUT on its own
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)
GIL_HELD_SPEED = labtest.threshold("LAB_TEST_GIL_HELD_SPEED", 0.15)
GIL_FREE_SPEED = labtest.threshold("LAB_TEST_GIL_FREE_SPEED", 0.25)
LATE = 0.25  # see _ran_to_its_end


def _importable(workload: str) -> None:
    """The workload's optional library is here, or pip has no wheel of it for this interpreter (skip), or fail."""
    labtest.need_module(WORKLOADS[workload].module)


def _size(workload: str) -> int:
    return calibrate.cached(1, workload=workload).rows_for(FACTOR * TIMEOUT)


def _alone(workload: str, size: int) -> float:
    """The call's time with no timeout: the shorter of two runs (the first one warms the library up)."""
    took = []
    for _ in range(2):
        t = time.perf_counter()
        workloads.get(workload).run(size)
        took.append(time.perf_counter() - t)
    return min(took)


def _ran_to_its_end(elapsed: float, alone: float) -> bool:
    """Control came back later than a quarter of what was left of the call at the deadline: it was not stopped."""
    return elapsed > TIMEOUT + LATE * (alone - TIMEOUT)


# pyarrow's declared interrupt is measured not to stop its compute call (the test after this one)
STOPS = [(w.name, s) for w in WORKLOADS.values() for s in w.stops if w.name != "pyarrow"]


@pytest.mark.parametrize("workload, strategy", STOPS, ids=[f"{w}-{s}" for w, s in STOPS])
def test_a_declared_stop_stops_the_call_and_leaves_a_usable_connection(workload, strategy):
    """Each declared in-process stop ends the call soon after the deadline with the workload's own exception."""
    _importable(workload)
    size = _size(workload)
    outcome = strategies.run(strategy, size, TIMEOUT, workload=workload, connection="reused")
    assert outcome.outcome == "timeout", outcome
    assert 0 <= outcome.elapsed - TIMEOUT < MAX_OVERSHOOT, outcome
    expected = {"duckdb": "_duckdb.InterruptException", "sqlite": "sqlite3.OperationalError"}[workload]
    assert outcome.exception_type == expected, outcome
    con = strategies.REUSED.get(strategy, 1, workload)
    try:
        assert workloads.get(workload).usable(con) is True
    finally:
        strategies.REUSED.discard(strategy, 1, workload)


def test_pyarrow_compute_does_not_honour_the_sigint_stop():
    """pyarrow.compute.sort_indices opens no stop token: the SIGINT at the deadline is handled only after the call."""
    _importable("pyarrow")
    size = _size("pyarrow")
    alone = _alone("pyarrow", size)
    outcome = strategies.run("interrupt", size, TIMEOUT, workload="pyarrow")
    assert outcome.outcome == "timeout" and outcome.exception_type == "app.measure.workloads.LabInterrupt", outcome
    assert _ran_to_its_end(outcome.elapsed, alone), (outcome, alone)


@pytest.mark.parametrize("workload", ["numpy", "builtin"])
def test_a_workload_without_an_interrupt_or_deadline_refuses_them(workload):
    """interrupt and deadline on numpy or the builtin raise NoSuchStop instead of running with no stop."""
    for strategy in ("interrupt", "deadline"):
        assert not strategies.supports(strategy, workload)
        with pytest.raises(strategies.NoSuchStop, match=f"no {strategy} stop"):
            strategies.run(strategy, 10, TIMEOUT, workload=workload)


@pytest.mark.parametrize("workload", ["sqlite", "numpy", "builtin"])
def test_signals_cannot_stop_a_call_that_checks_no_signal(workload):
    """SIGALRM's handler runs only once the C call returns: the caller gets TimeoutError at the call's natural end."""
    _importable(workload)
    size = _size(workload)
    alone = _alone(workload, size)
    outcome = strategies.run("signals", size, TIMEOUT, workload=workload)
    assert outcome.outcome == "timeout", outcome
    assert outcome.exception_type == "timeout_decorator.timeout_decorator.TimeoutError", outcome
    assert _ran_to_its_end(outcome.elapsed, alone), f"stopped early: {outcome}, alone {alone:.3f}s"


def _other_thread_speed(workload: str) -> float:
    return workloads.other_thread_speed(workload, calibrate.cached(1, workload=workload).rows_for(0.3))


def test_the_builtin_holds_the_gil_and_numpy_releases_it():
    """On this GIL build another thread barely runs during sum(range(n)) and runs during numpy.correlate."""
    held = _other_thread_speed("builtin")
    assert held < GIL_HELD_SPEED, f"another thread ran at {held:.0%} of its speed during the builtin"
    _importable("numpy")
    free = _other_thread_speed("numpy")
    assert free > GIL_FREE_SPEED, f"another thread ran at {free:.0%} of its speed during numpy.correlate"


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
def test_process_cleanup_stops_every_workload_and_leaves_nothing(workload):
    """process+cleanup under fork: timeout-decorator's TimeoutError at the deadline, the task process killed and gone."""
    _importable(workload)
    size = _size(workload)
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("fork", force=True)
    try:
        outcome = strategies.run("process+cleanup", size, TIMEOUT, workload=workload)
        left = [p.pid for p in probe.snapshot().tasks]
        cleanup = reap_tasks(grace=0.3)
    finally:
        multiprocessing.set_start_method(before, force=True)
    assert outcome.outcome == "timeout", outcome
    assert outcome.exception_type == "timeout_decorator.timeout_decorator.TimeoutError", outcome
    assert 0 <= outcome.elapsed - TIMEOUT < MAX_OVERSHOOT, outcome
    assert len(left) == 1 and cleanup.remaining == 0, (left, cleanup)
