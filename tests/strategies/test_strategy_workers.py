"""Every strategy end to end in real Celery workers (`scripts/lab quick`, this machine's python3).

One lab run serves the per-strategy tests below (starting seven workers once is most of the
cost); each test asserts what its strategy is known to do. Bounds are loose by default and
overridable: LAB_TEST_MAX_OVERSHOOT (seconds); CPU after the deadline is measured against the
lab's own notion of busy over each record's window, not in fixed CPU seconds.
"""

from __future__ import annotations

import inspect

import pytest

import labtest
from app.kernel import axes
from app.measure import probe

ITERATIONS = 2
TIMEOUT = 0.6  # opening a DuckDB database takes 40 ms of CPU: with seven workers on two cores, far longer
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)
BILLIARD_TIMEOUT_POLL = 1.0  # seconds between billiard's TimeoutHandler looks, without an event loop
QUEUES = [
    "gil.process.fork",
    "gil.process.forkserver",
    "gil.process+cleanup.fork",
    "gil.signals",
    "gil.interrupt",
    "gil.deadline",
    "gil.prefork-time-limit",
]

# "busy" as the worker's CpuWatch counts it: more than this share of one core (app/measure/probe.py); a call that
# left nothing running burns less than that over its settle window
BUSY_SHARE = inspect.signature(probe.CpuWatch).parameters["busy_fraction"].default

pytestmark = pytest.mark.slow


def quiet(record: dict) -> bool:
    """Whether the CPU burned after the call returned stayed under BUSY_SHARE of one core over the window."""
    return record["cpu_after_deadline"] < BUSY_SHARE * record["quiet"]["window"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """One `scripts/lab quick` over the matrix; its records by queue and its run folder."""
    tmp = tmp_path_factory.mktemp("matrix")
    env = labtest.base_env(
        tmp, TARGET_QUEUES=",".join(QUEUES), ITERATIONS=str(ITERATIONS), DUCKDB_TIMEOUT=str(TIMEOUT),
        SETTLE_SECONDS="0.3", CLEANUP_GRACE_SECONDS="0.5",
    )
    done = labtest.lab("quick", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp / "results")
    return run_dir, labtest.records_by_queue(run_dir, QUEUES, ITERATIONS), done.stdout


def _timeouts(rs):
    assert {r["outcome"] for r in rs} == {"timeout"}, [(r["outcome"], r.get("exception_type")) for r in rs]


def _log_lines(run_dir, queue):
    return [(int(n), o, int(c), int(z)) for n, o, c, z in labtest.ITER_LINE.findall(labtest.worker_log(run_dir, queue))]


def test_every_worker_logs_the_articles_line(matrix):
    run_dir, by_queue, _ = matrix
    for queue, rs in by_queue.items():
        expected = [(r["iteration"], r["outcome"], r["immediate"]["children"], r["immediate"]["zombies"]) for r in rs]
        assert _log_lines(run_dir, queue) == expected, queue


@pytest.mark.parametrize("queue, exception_type", [
    ("gil.interrupt", "_duckdb.InterruptException"),
    ("gil.deadline", "_duckdb.InterruptException"),
])
def test_interrupt_and_deadline_stop_in_time_and_leave_nothing(matrix, queue, exception_type):
    _, by_queue, _ = matrix
    rs = by_queue[queue]
    _timeouts(rs)
    for r in rs:
        assert r["exception_type"] == exception_type, r["exception_message"]
        assert 0 <= r["overshoot"] < MAX_OVERSHOOT, r["overshoot"]
        assert r["immediate"]["children"] == 0 and r["settled"]["children"] == 0
        assert r["leaked_task_pids"] == [] and r["running_after_settle"] == 0
        assert r["quiet"]["busy_at_end"] is False and quiet(r), r["quiet"]
        assert r["quiet_after_deadline"] is not None and r["quiet_after_deadline"] < MAX_OVERSHOOT


def test_every_strategy_counts_from_the_task_start(matrix):
    """Overshoot (control back) and query stopped count from one recorded moment, the task's start in
    the process that runs it; the task's own work before the call (its baseline) is inside the budget."""
    _, by_queue, _ = matrix
    for queue, rs in by_queue.items():
        want = "pool-accept" if queue.endswith("prefork-time-limit") else "task-prerun"
        starts = [r["clock_start"] for r in rs]
        assert starts == sorted(set(starts)), (queue, starts)  # one per iteration, in order
        for r in rs:
            assert (r["clock_source"], r["connection"]) == (want, "per-call"), (queue, r["clock_source"])
            assert 0 < r["called_after"] < r["timeout"], (queue, r["called_after"])
            assert r["overshoot"] == round(r["elapsed"] - r["timeout"], 4), queue
            if r["stop_overshoot"] is not None:
                assert r["stop_overshoot"] == round(r["stopped"] - r["timeout"], 4), queue
                assert r["called_after"] <= r["stopped"] <= r["elapsed"], queue


def test_signals_returns_duckdbs_exception_not_the_decorators(matrix):
    _, by_queue, _ = matrix
    rs = by_queue["gil.signals"]
    _timeouts(rs)
    for r in rs:
        if r["stop_overshoot"] is None:
            # the alarm went off before the query started (opening the database is slow on a
            # busy machine): then the decorator's own TimeoutError comes through
            assert r["exception_type"] == "timeout_decorator.timeout_decorator.TimeoutError", r
        else:
            # the SIGALRM handler raised timeout_decorator.TimeoutError inside DuckDB, which
            # turned it into its own error: that is what the task sees
            assert r["exception_type"] == "RuntimeError", r
            assert "interrupted" in r["exception_message"].lower(), r
        assert 0 <= r["overshoot"] < MAX_OVERSHOOT
        assert r["settled"]["children"] == 0
    assert "RuntimeError" in {r["exception_type"] for r in rs}, "the alarm never hit a running query"


def test_process_under_fork_keeps_running_the_query_after_the_deadline(matrix):
    """The article: the SIGTERMed child inherited Celery's handler, so it keeps burning CPU."""
    _, by_queue, _ = matrix
    rs = by_queue["gil.process.fork"]
    _timeouts(rs)
    assert {r["start_method"] for r in rs} == {"fork"}
    assert [len(r["leaked_task_pids"]) for r in rs] == [1, 2], [r["settled"] for r in rs]
    # what the calls that stop their query burned in the same run, on the same cores at the same time
    stopped = [r["cpu_after_deadline"] for q in ("gil.interrupt", "gil.deadline") for r in by_queue[q]]
    assert len(stopped) == 2 * ITERATIONS, stopped
    for r in rs:
        assert r["exception_type"] == "timeout_decorator.timeout_decorator.TimeoutError"
        assert r["running_after_settle"] >= 1, r["settled"]
        assert r["quiet"]["busy_at_end"] is True and r["quiet_after_deadline"] is None, r["quiet"]
        assert r["cpu_after_deadline"] > max(stopped), (r["quiet"], stopped)


def test_process_under_forkserver_leaves_only_the_helpers(matrix):
    _, by_queue, _ = matrix
    rs = by_queue["gil.process.forkserver"]
    _timeouts(rs)
    assert {r["start_method"] for r in rs} == {"forkserver"}
    for r in rs:
        assert r["settled"]["roles"]["task"] == 0, r["settled"]
        assert r["settled"]["roles"]["forkserver"] == 1, r["settled"]
        assert quiet(r), r["quiet"]


def test_process_cleanup_under_fork_has_to_kill_and_leaves_nothing(matrix):
    run_dir, by_queue, _ = matrix
    rs = by_queue["gil.process+cleanup.fork"]
    _timeouts(rs)
    lines = labtest.CLEANUP_LINE.findall(labtest.worker_log(run_dir, "gil.process+cleanup.fork"))
    assert [remaining for *_, remaining in lines] == ["0"] * ITERATIONS, lines
    for r in rs:
        assert r["cleanup"]["remaining"] == 0 and r["leaked_task_pids"] == [], r["cleanup"]
        # SIGTERM is swallowed by the inherited Celery handler: only SIGKILL ends the task process
        assert r["cleanup"]["killed"] == r["cleanup"]["terminated"] >= 1, r["cleanup"]
        assert r["settled"]["roles"]["task"] == 0


def test_prefork_soft_time_limit_is_caught_in_the_task(matrix):
    """Celery's prefork pool: SIGUSR1 -> SoftTimeLimitExceeded inside DuckDB -> a real record."""
    _, by_queue, _ = matrix
    rs = by_queue["gil.prefork-time-limit"]
    _timeouts(rs)
    for r in rs:
        # SIGUSR1's SoftTimeLimitExceeded: as such when it lands in Python code, as DuckDB's
        # RuntimeError('Query interrupted') when it lands inside the query
        assert r["exception_type"] in ("RuntimeError", "billiard.exceptions.SoftTimeLimitExceeded"), r
        # counted from the pool process's accept, which Celery's soft limit starts after: never early
        assert r["clock_source"] == "pool-accept", r["clock_source"]
        # Without Celery's event loop (the embedded broker's transport has none) billiard's
        # TimeoutHandler thread looks at the limits once a second (billiard/pool.py, its body's
        # time.sleep(1.0)): the soft limit fires up to a second late there; on RabbitMQ the hub checks.
        bound = MAX_OVERSHOOT + (BILLIARD_TIMEOUT_POLL if r["broker"] == "filesystem" else 0.0)
        assert 0 <= r["overshoot"] < bound, (r["overshoot"], r["broker"])
        assert r["settled"]["children"] == 0
    assert len({r["pid"] for r in rs}) == 1, "the pool process was replaced: the hard limit fired"


def test_report_has_the_matrix_table_and_a_chart(matrix):
    run_dir, _, stdout = matrix
    text = (run_dir / "report.md").read_text()
    assert "## Strategy x pool x workload x build" in text
    for strategy in ("process", "process+cleanup", "signals", "interrupt", "deadline", "prefork-time-limit"):
        assert f"| {strategy} | {axes.STRATEGIES[strategy].pool} | duckdb | gil |" in text, strategy
    assert "still busy in 2/2" in text  # process under fork
    png = run_dir / "summary.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "quiet after deadline" in stdout


def test_prefork_hard_time_limit_gives_a_producer_side_record(tmp_path):
    """When the task outlives time_limit (here: the settle window, 2 s, is longer than the 1 s
    between soft and hard limit) Celery kills the pool process; the producer records `killed`."""
    env = labtest.base_env(tmp_path, TARGET_QUEUES="gil.prefork-time-limit", ITERATIONS="1",
                           DUCKDB_TIMEOUT=str(TIMEOUT), SETTLE_SECONDS="2")
    done = labtest.lab("quick", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    (r,) = labtest.records(run_dir)
    assert (r["outcome"], r["exception_type"], r["strategy"]) == ("killed", "TimeLimitExceeded", "prefork-time-limit"), r
    # the task got as far as the article's line before it was killed
    assert _log_lines(run_dir, "gil.prefork-time-limit") == [(1, "timeout", 0, 0)]
    assert "| prefork-time-limit | prefork | duckdb | gil |" in (run_dir / "report.md").read_text()
