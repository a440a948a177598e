"""The strategies on the CPython 3.14 builds (`scripts/lab run`): forkserver (3.14's default),
spawn, and the free-threaded build with the GIL kept off.

Needs `scripts/lab setup` (skips locally without it, fails under CI=true). Bounds overridable:
LAB_TEST_MAX_OVERSHOOT (seconds), LAB_TEST_MAX_STOP_ROWS (how far the query may run on past the
deadline before it raises, the mechanism's own latency, in rows of the query: seconds by the run's
own calibration).
"""

from __future__ import annotations

import inspect

import pytest

import labtest
from app.measure import probe
from app.strategies import Watchdog

ITERATIONS = 2
TIMEOUT = 0.6
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)
# DuckDB notices a stop between chunks of the query, so its latency is work: rows, which the worker's own
# calibration turns into seconds on this machine and load (10M rows: 0.1-0.16 s at the 63-102M rows/s of
# docs/calibration.md). The watchdog adds up to one look and one repeat (app/strategies.py).
MAX_STOP_ROWS = labtest.threshold("LAB_TEST_MAX_STOP_ROWS", 10e6)
# "busy" as the worker's CpuWatch counts it: more than this share of one core (app/measure/probe.py); a call that
# left nothing running burns less than that over its settle window, one whose query ran on burns more
BUSY_SHARE = inspect.signature(probe.CpuWatch).parameters["busy_fraction"].default
QUEUES = ["gil.process", "gil.process.spawn", "nogil.process+cleanup", "nogil.signals", "nogil.interrupt",
          "nogil.deadline"]

pytestmark = [pytest.mark.built, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    labtest.built_python("gil"), labtest.built_python("nogil")
    tmp = tmp_path_factory.mktemp("builds")
    env = labtest.base_env(tmp, TARGET_QUEUES=",".join(QUEUES), ITERATIONS=str(ITERATIONS),
                           DUCKDB_TIMEOUT=str(TIMEOUT), SETTLE_SECONDS="0.3")
    done = labtest.lab("run", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp / "results")
    by_queue = labtest.records_by_queue(run_dir, QUEUES, ITERATIONS)
    for queue, rs in by_queue.items():
        assert {r["outcome"] for r in rs} == {"timeout"}, f"{queue}: {rs}"
        assert {r["python"] for r in rs} == {"3.14.7"}
    return run_dir, by_queue


def max_stop(record: dict) -> float:
    """Seconds past the deadline the query may run before it raises: MAX_STOP_ROWS at the record's own speed."""
    return Watchdog.SLICE + Watchdog.REPEAT + MAX_STOP_ROWS / record["calibration"]["rows_per_second"]


def quiet(record: dict) -> bool:
    """Whether the CPU burned after the call returned stayed under BUSY_SHARE of one core over the window."""
    return record["cpu_after_deadline"] < BUSY_SHARE * record["quiet"]["window"]


def test_process_under_forkserver_dies_on_sigterm_and_is_reaped(run):
    """3.14's default: the task process is forked by the forkserver, which has Python's default
    SIGTERM handling, so the SIGTERM kills it and the forkserver reaps it; the helpers stay."""
    _, by_queue = run
    for r in by_queue["gil.process"]:
        assert r["start_method"] == "forkserver"
        assert r["settled"]["roles"]["task"] == 0, r["settled"]
        assert r["settled"]["roles"]["forkserver"] == 1 and r["settled"]["roles"]["resource_tracker"] == 1
        assert r["running_after_settle"] == 0 and quiet(r), r["quiet"]


def test_process_under_spawn_leaves_a_zombie_per_worker_not_a_running_query(run):
    """spawn: a fresh interpreter, killed by the SIGTERM; nobody joins it, so it stays a zombie
    of the worker until multiprocessing reaps it at the next start."""
    _, by_queue = run
    for r in by_queue["gil.process.spawn"]:
        assert r["start_method"] == "spawn"
        tasks = [p for p in r["settled"]["processes"] if p["role"] == "task"]
        assert tasks and all(p["status"] == "zombie" for p in tasks), r["settled"]
        assert r["running_after_settle"] == 0 and quiet(r), r["quiet"]


def test_nogil_workers_keep_the_gil_off(run):
    _, by_queue = run
    for queue in QUEUES:
        if queue.startswith("nogil."):
            assert {(r["build"], r["gil_enabled"]) for r in by_queue[queue]} == {("nogil", False)}, queue


@pytest.mark.parametrize("queue", ["nogil.interrupt", "nogil.deadline"])
def test_nogil_interrupt_and_deadline_stop_promptly_and_leave_nothing(run, queue):
    """On 3.14t with the GIL off both stop the query a few chunks past the deadline and leave nothing running."""
    _, by_queue = run
    for r in by_queue[queue]:
        assert r["exception_type"] == "_duckdb.InterruptException"
        assert 0 <= r["stop_overshoot"] < max_stop(r), \
            f"query stopped {r['stop_overshoot']:.3f}s after the deadline, allowed {max_stop(r):.3f}s"
        assert 0 <= r["overshoot"] < MAX_OVERSHOOT
        assert r["settled"]["children"] == 0 and quiet(r), r["quiet"]


def test_nogil_signals_returns_duckdbs_exception(run):
    _, by_queue = run
    rs = by_queue["nogil.signals"]
    for r in rs:
        if r["stop_overshoot"] is not None:  # the alarm hit the running query
            assert r["exception_type"] == "RuntimeError" and "interrupted" in r["exception_message"].lower(), r
    assert "RuntimeError" in {r["exception_type"] for r in rs}


def test_nogil_process_cleanup_leaves_nothing(run):
    run_dir, by_queue = run
    for r in by_queue["nogil.process+cleanup"]:
        assert r["start_method"] == "forkserver"
        assert r["cleanup"]["remaining"] == 0 and r["settled"]["roles"]["task"] == 0, r["cleanup"]
    lines = labtest.CLEANUP_LINE.findall(labtest.worker_log(run_dir, "nogil.process+cleanup"))
    assert [remaining for *_, remaining in lines] == ["0"] * ITERATIONS
