"""One clock for every strategy: the deadline and every time of an Outcome count from one moment.

In a worker that moment is the task's start (app/celery.py's hooks feed strategies.TASK_CLOCK:
the prefork pool's accept, or task_prerun under solo); here it is given explicitly, earlier than
the call, as the task's baseline snapshots make it. Real DuckDB queries in the test process.
Bounds: LAB_TEST_MAX_OVERSHOOT (seconds).
"""

from __future__ import annotations

import time

import pytest

import labtest  # also puts the repo on sys.path
from app import strategies

TIMEOUT = 0.4
LEAD = 0.25  # the clock started this long before the call
QUERY_SECONDS = 10 * TIMEOUT
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)
# a task process starts in 0.1-1.3 s measured here, on top of the overshoot
MAX_PROCESS_START = labtest.threshold("LAB_TEST_MAX_PROCESS_START", 1.5)
ROUNDING = 1e-6  # Outcome's times are rounded to the microsecond


@pytest.mark.parametrize("strategy", ["interrupt", "deadline", "signals", "process"])
def test_the_deadline_counts_from_the_clock_not_from_the_call(strategy):
    """The call's moment and its deadline count from the clock given, LEAD before the call, not from the call."""
    rows = labtest.rows_for(QUERY_SECONDS)
    clock = strategies.Clock(time.monotonic() - LEAD, "task-prerun")
    before = time.monotonic()
    outcome = strategies.run(strategy, rows, TIMEOUT, clock=clock)
    assert outcome.outcome == "timeout", outcome
    assert (outcome.started_at, outcome.clock_source) == (clock.start, "task-prerun")
    # the call came after this test's `before`, and what run() did before it (the gap) took less than the
    # call itself: both this run's own times, so a slow machine stretches both; LEAD counted twice would not
    gap = outcome.called_after - (before - clock.start)
    assert LEAD <= before - clock.start and -ROUNDING <= gap < outcome.elapsed - outcome.called_after, outcome
    assert 0 <= outcome.elapsed - TIMEOUT < MAX_OVERSHOOT + (MAX_PROCESS_START if strategy == "process" else 0), outcome
    if strategy != "process":  # a task process starts in 0.1-1.3 s: it may miss the whole budget
        # the call got what was left of the budget, not TIMEOUT of its own
        assert outcome.elapsed - outcome.called_after < TIMEOUT, outcome
    if outcome.stopped is not None:
        assert outcome.called_after <= outcome.stopped <= outcome.elapsed, outcome
    record = outcome.as_dict()
    assert record["clock_start"] == round(clock.start, 6) and "started_at" not in record


def test_without_a_clock_the_call_is_the_start():
    """Without a clock the call's own moment is the start, inside what this test's clock saw around the call."""
    before = time.monotonic()
    outcome = strategies.run("deadline", 1000, 10.0)
    after = time.monotonic()
    assert outcome.outcome == "ok" and outcome.clock_source == "call" and outcome.called_after == 0
    assert before <= outcome.started_at, (before, outcome)
    assert outcome.started_at + outcome.elapsed <= after + ROUNDING, (after, outcome)


def test_the_task_clock_prefers_the_pool_accept_and_is_taken_once():
    clock = strategies.TaskClock()
    assert clock.take() is None
    before = time.monotonic()
    clock.prerun()  # solo: no accept stamp
    solo = clock.take()
    assert solo.source == "task-prerun" and before <= solo.start <= time.monotonic()
    assert clock.take() is None
    accepted = clock.accept()  # billiard's now() in a prefork pool process
    time.sleep(0.01)
    clock.prerun()
    assert clock.take() == strategies.Clock(accepted, "pool-accept")
    clock.prerun()  # the next task without an accept stamp: not the old one
    assert clock.take().source == "task-prerun"
    assert set(strategies.CLOCK_SOURCES) == {"call", "pool-accept", "task-prerun"}
