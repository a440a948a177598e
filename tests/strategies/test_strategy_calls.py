"""app.strategies called directly, in the test process: what each in-process strategy raises,
how late it gives control back, what it leaves, and what it adds to a call that finishes in time.

Real DuckDB queries, no Celery. Bounds are loose by default (a shared 2-core machine) and
overridable: LAB_TEST_MAX_OVERSHOOT (seconds), LAB_TEST_MAX_OVERHEAD_SHARE (of a plain call timed beside it).
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

import labtest  # also puts the repo on sys.path
from app.measure import probe
from app import strategies

TIMEOUT = 0.2
QUERY_SECONDS = 50 * TIMEOUT  # calibrated on this interpreter: every call below must be cut short
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)
# What a strategy may add to a call that finishes in time, as a share of a plain call (strategies.plain: connect,
# query, close, no timeout) timed beside it: a slower machine slows both. A plain call opens a database (about
# 20 ms here), the strategies add 0.1-0.8 ms (docs/strategies.md): a quarter is the old 5 ms on this machine.
MAX_OVERHEAD_SHARE = labtest.threshold("LAB_TEST_MAX_OVERHEAD_SHARE", 0.25)


def _started_by_this_process(before: set[int]) -> set[int]:
    """Processes below this one that were not there `before` and descend from this process itself:
    a helper that a process already there starts (the session's RabbitMQ node runs `sh -c df ...`
    every few seconds) is not the strategy's doing."""
    new = {p.pid: p.ppid for p in probe.snapshot().processes if p.pid not in before}
    ours: set[int] = set()
    grew = True
    while grew:
        grew = False
        for pid, ppid in new.items():
            if pid not in ours and (ppid == os.getpid() or ppid in ours):
                ours.add(pid)
                grew = True
    return ours


@pytest.mark.parametrize(
    "strategy, exception_type, message",
    [
        ("interrupt", "_duckdb.InterruptException", "Interrupted"),
        ("deadline", "_duckdb.InterruptException", "Query exceeded maximum execution time"),
        # SIGALRM's TimeoutError never reaches the caller: DuckDB sees the pending signal and
        # raises its own error, whose type is what the caller has to catch.
        ("signals", "RuntimeError", "Query interrupted"),
    ],
)
def test_in_process_strategy_stops_the_query_and_leaves_nothing(strategy, exception_type, message):
    threads_before = threading.active_count()
    # other tests of this session may have left helpers (a forkserver, a resource tracker)
    pids_before = {p.pid for p in probe.snapshot().processes}

    outcome = strategies.run(strategy, labtest.rows_for(QUERY_SECONDS), TIMEOUT)

    assert outcome.outcome == "timeout", outcome
    assert outcome.exception_type == exception_type, outcome
    assert message in (outcome.exception_message or ""), outcome
    assert 0 <= outcome.elapsed - TIMEOUT < MAX_OVERSHOOT, f"overshoot {outcome.elapsed - TIMEOUT:.3f}s: {outcome}"
    assert outcome.stopped is not None and outcome.stopped <= outcome.elapsed
    assert not _started_by_this_process(pids_before), "a new process (or zombie) below the test process"
    # at most the one watchdog thread `interrupt` keeps for the whole process
    assert threading.active_count() <= threads_before + (strategy == "interrupt")


def test_interrupt_reuses_one_watchdog_thread():
    strategies.run("interrupt", labtest.rows_for(QUERY_SECONDS), 0.05)
    before = {t.ident for t in threading.enumerate()}
    for _ in range(5):
        assert strategies.run("interrupt", labtest.rows_for(QUERY_SECONDS), 0.05).outcome == "timeout"
    assert {t.ident for t in threading.enumerate()} == before


def test_interrupt_is_not_fired_after_the_call_returned():
    """A call that finished in time disarms its deadline: the next query on this thread runs."""
    first = strategies.run("interrupt", 1000, 1.0)
    assert first.outcome == "ok", first
    time.sleep(1.1 - first.elapsed)  # the first deadline has passed
    outcome = strategies.run("interrupt", 1000, 10.0)
    assert outcome.outcome == "ok", outcome


@pytest.mark.parametrize("strategy", ["interrupt", "deadline", "signals"])
def test_overhead_for_a_query_that_finishes_in_time_is_small(strategy):
    """elapsed - work, what the strategy adds around connect + query + close, is a small share of a plain call."""
    added, plain = [], []
    for _ in range(9):  # interleaved: a change of load hits both alike
        outcome = strategies.run(strategy, 1000, 10.0)
        assert outcome.outcome == "ok", outcome
        added.append(outcome.elapsed - outcome.work)
        t = time.perf_counter()
        strategies.plain(1000)
        plain.append(time.perf_counter() - t)
    assert statistics.median(added) < MAX_OVERHEAD_SHARE * statistics.median(plain), \
        f"{strategy}: added {sorted(added)}, plain calls {sorted(plain)}"


def test_process_strategy_reports_timeout_decorator_error_and_a_task_process():
    """Outside Celery, under fork: timeout-decorator's own TimeoutError, one task process."""
    import multiprocessing

    ctx_before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("fork", force=True)
    try:
        outcome = strategies.run("process", labtest.rows_for(QUERY_SECONDS), TIMEOUT)
    finally:
        multiprocessing.set_start_method(ctx_before, force=True)
    assert outcome.outcome == "timeout"
    assert outcome.exception_type == "timeout_decorator.timeout_decorator.TimeoutError"
    # SIGTERMed and never joined: still there (dying or a zombie) right after the call
    from app.cleanup import reap_tasks

    assert len(probe.snapshot().tasks) == 1
    assert reap_tasks(grace=1.0).remaining == 0
