"""What a timeout leaves behind, followed past the settle window: leftovers' CPU to the end, and the timeline.

Real workers through `scripts/lab quick` (this machine's python3) and `scripts/lab run` (the CPython
3.14 builds, skipped without them, failing under CI=true). Nothing is mocked; bounds are what runs on
this machine measured (2 busy cores), with room, and overridable: LAB_TEST_MIN_EXTRA_CPU (CPU seconds a
leftover that outlived its settle window burns after it), LAB_TEST_MAX_REAP_AFTER_RETURN (seconds from
control coming back to the forkserver reaping the killed task), LAB_TEST_FORK_RACE_MARGIN (core time the
first fork child gets in the run, over what its query needs).
"""

from __future__ import annotations

import os

import pytest

import labtest

TIMEOUT = 0.3
SETTLE = 0.5  # the default SETTLE_SECONDS the workers use
# Two clock ticks, the resolution of the followed CPU: how much more a leftover burns after its window
# depends on how long it outlives it, which on busy cores varies with the calibration (measured:
# 0.02-1.3 CPU s for the same QUERY_SECONDS).
MIN_EXTRA_CPU = labtest.threshold("LAB_TEST_MIN_EXTRA_CPU", 2 / os.sysconf("SC_CLK_TCK"))
# Measured: 20-60 ms after the return (a look every 20 ms, after a psutil snapshot of a few ms).
MAX_REAP = labtest.threshold("LAB_TEST_MAX_REAP_AFTER_RETURN", 0.3)


def _by_queue(run_dir, queues, iterations, outcome="timeout"):
    recs = labtest.records(run_dir)
    by_queue = {q: sorted((r for r in recs if r["queue"] == q), key=lambda r: r["iteration"]) for q in queues}
    for queue, rs in by_queue.items():
        assert [r["iteration"] for r in rs] == list(range(1, iterations + 1)), f"{queue}: {rs}"
        assert {r["outcome"] for r in rs} == {outcome}, f"{queue}: {[r['outcome'] for r in rs]}"
    return by_queue


def _own_states(record: dict, sample: dict) -> list[str]:
    own = set(record["call_pids"])
    return [state for pid, _, state, _ in sample["p"] if pid in own]


def _summary_row(run_dir, queue: str) -> dict[str, str]:
    """The printed summary table's row of `queue`, by column title (columns are 2+ spaces apart)."""
    import re

    lines = (run_dir / "summary.txt").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("queue "))
    rule = lines[header + 1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    row = next(line for line in lines[header + 2:] if line.split()[0] == queue)
    cells = lambda line: [line[a:b + 1].strip() for a, b in spans]  # noqa: E731
    return dict(zip(cells(lines[header]), cells(row.ljust(len(rule)))))


# --- under fork, the leftovers run on: their CPU to the end ------------------------------------------


# Each fork child's query, in seconds of one core (the worker calibrates it): longer than its own deadline
# and settle window, so every child outlives its window and the first one is followed past it to its end.
FORK_QUERY_SECONDS = round(1.5 * (TIMEOUT + SETTLE), 3)
# How much more core time the first child must have had by the run's end than its query needs.
FORK_RACE_MARGIN = labtest.threshold("LAB_TEST_FORK_RACE_MARGIN", 2.0)


def fork_iterations(cores: int, load: float) -> int:
    """How many iterations the fork run needs for its first child to end well before the run does.

    Each iteration lasts at least TIMEOUT + SETTLE (the worker waits out the deadline and the settle
    window), and in iteration j the first child shares the cores with the j - 1 younger children and
    `load` other runnable processes: by the end of iteration n it has had at least (TIMEOUT + SETTLE) x
    sum(min(1, cores / (j + load)) for j in 1..n) seconds of a core, whatever the machine's speed.
    """
    assert cores >= 1 and load >= 0, (cores, load)
    for n in range(4, 61):  # a few children at least: the first ones end while the run goes on
        core_seconds = (TIMEOUT + SETTLE) * sum(min(1.0, cores / (j + load)) for j in range(1, n + 1))
        if core_seconds >= FORK_RACE_MARGIN * FORK_QUERY_SECONDS:
            return n
    raise AssertionError(f"{cores} core(s) at load {load:.1f}: no fork run of up to 60 iterations is long enough")


@pytest.fixture(scope="module")
def fork_run(tmp_path_factory):
    # Under fork each timed-out child runs its query to the end, so the first ones end while the run goes
    # on and the last one may still run at its end. The race (the first child's query against the run) is
    # sized from what this machine has now, its cores and load, not from its speed, which the calibration
    # takes out. With a fixed 8 iterations on these 2 cores at load average 8, QUERY_SECONDS=1.5 ended the
    # first child only 0.6 s before the run did; fork_iterations asks for 30 there.
    iterations = fork_iterations(len(os.sched_getaffinity(0)), os.getloadavg()[0])
    tmp = tmp_path_factory.mktemp("fork")
    env = labtest.base_env(tmp, START_METHOD="fork", TARGET_QUEUES="gil", ITERATIONS=str(iterations),
                           QUERY_SECONDS=f"{FORK_QUERY_SECONDS:g}", DUCKDB_TIMEOUT=str(TIMEOUT))
    done = labtest.lab("quick", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp / "results")
    return run_dir, _by_queue(run_dir, ["gil"], iterations)["gil"], done.stdout


@pytest.mark.slow
def test_a_leftover_followed_to_its_end_burned_more_than_its_settle_window_share(fork_run):
    """Under fork a timed-out child that ends during the run is followed to its end and burned more CPU than its settle window saw."""
    _, recs, _ = fork_run
    items = [(r, item) for r in recs for item in r["leftovers"]]
    assert all(len(r["leftovers"]) == 1 and r["leftovers"][0]["pid"] in r["call_pids"] for r in recs), recs
    ended = [(r, item) for r, item in items if not item["running_at_end"]]
    assert ended and ended[0][0]["iteration"] == 1, [(r["iteration"], i) for r, i in items]
    for r, item in ended:
        # ended before the run did: a zombie (nobody waited for it) or reaped by a later Process.start()
        assert item["ended_after"] <= r["followed_for"] and item["state_at_end"] in ("Z", "gone"), item
    # those still running when their window closed and ending well after it burned more than the window saw
    outlived = [(r, item) for r, item in ended if item["ended_after"] > r["timeline"]["samples"][-1]["t"] + 0.1]
    assert outlived, [(r["iteration"], i) for r, i in ended]
    for r, item in outlived:
        assert item["cpu_to_end"] - item["cpu_in_settle"] > MIN_EXTRA_CPU, item
    for r in recs:
        # a record's total: the worker's own threads in its window, its leftovers to their end
        assert r["cpu_to_end"] == pytest.approx(r["quiet"]["cpu_in_worker"] + sum(i["cpu_to_end"] for i in r["leftovers"]),
                                                abs=0.002)
        assert r["running_at_end"] == sum(i["running_at_end"] for i in r["leftovers"])
        assert r["follow_error"] is None


@pytest.mark.slow
def test_the_summary_shows_both_cpu_figures(fork_run):
    """The summary has a settle-window CPU column and a to-the-end one, the larger, and the notes say both."""
    run_dir, recs, stdout = fork_run
    row = _summary_row(run_dir, "gil")
    settle = float(row["CPU in settle window"].split()[0])
    to_end = float(row["CPU after deadline, to the end"].split()[0])
    assert to_end > settle, row
    assert to_end == pytest.approx(sum(r["cpu_to_end"] for r in recs), abs=0.01)
    # Whether the last child (1.2 s of query, the run ending about 0.9 s after its start) is still
    # running when the run ends depends on this machine's load: the column says what happened.
    # A leftover still running at the end is asserted where it is certain (QUERY_SECONDS=30, below).
    running = sum(r["running_at_end"] for r in recs)
    marker = f"({running} still running at the end)"
    assert (marker in row["CPU after deadline, to the end"]) == (running > 0), (running, row)
    assert running > 0 or "still running" not in row["CPU after deadline, to the end"], row
    text = (run_dir / "summary.txt").read_text()
    assert f"{to_end:.2f} CPU s burned after the deadlines, to the end of the run" in text, text
    assert f"({settle:.2f} s of it in the settle windows)" in text, text
    assert f"[producer] gil: leftovers to the end: {len(recs)} followed" in stdout, stdout


@pytest.mark.slow
def test_leftovers_pile_up_and_are_marked_still_running_at_the_end(tmp_path):
    """Under fork each timed-out child keeps running its query: they pile up, one per iteration, and a query that
    outlasts the run is reported as still running at the end, with what it burned by then."""
    env = labtest.base_env(tmp_path, START_METHOD="fork", TARGET_QUEUES="gil", ITERATIONS="3", QUERY_SECONDS="30",
                           DUCKDB_TIMEOUT=str(TIMEOUT))

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    recs = _by_queue(run_dir, ["gil"], 3)["gil"]
    assert [len(r["leaked_task_pids"]) for r in recs] == [1, 2, 3], [r["settled"] for r in recs]
    for r in recs:
        (item,) = r["leftovers"]
        assert item["running_at_end"] is True and item["ended_after"] is None and item["gone_after"] is None, item
        assert item["state_at_end"] in ("R", "S", "D"), item
        assert r["running_at_end"] == 1 and r["ended_after"] is None
        assert r["followed_for"] > SETTLE, r["followed_for"]
    # the first one also ran through the later iterations after its own window
    first = recs[0]["leftovers"][0]
    assert first["cpu_to_end"] - first["cpu_in_settle"] > MIN_EXTRA_CPU, first
    assert "(3 still running at the end)" in _summary_row(run_dir, "gil")["CPU after deadline, to the end"]
    text = (run_dir / "summary.txt").read_text()
    assert "3 of its 3 leftover process(es) still running then: more to come" in text, text
    assert "gil: task processes pile up: 1 left after iteration 1, 3 after iteration 3" in text, text
    assert "kept running the query" in text, text


# --- the timeline per start method, on the 3.14 builds --------------------------------------------------

QUEUES_314 = ["gil", "nogil", "gil.process.fork", "gil.process.spawn"]


@pytest.fixture(scope="module")
def run_314(tmp_path_factory):
    labtest.built_python("gil"), labtest.built_python("nogil")
    tmp = tmp_path_factory.mktemp("timeline")
    env = labtest.base_env(tmp, TARGET_QUEUES=",".join(QUEUES_314), ITERATIONS="3")
    done = labtest.lab("run", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp / "results")
    return run_dir, _by_queue(run_dir, QUEUES_314, 3)


@pytest.mark.built
@pytest.mark.slow
@pytest.mark.parametrize("queue", ["gil", "nogil"])
def test_the_timeline_shows_the_forkserver_reaping_the_task(run_314, queue):
    """Under forkserver the killed task shows in the timeline, then is gone within a few looks: reaped_after."""
    _, by_queue = run_314
    recs = by_queue[queue]
    assert {r["start_method"] for r in recs} == {"forkserver"}
    for r in recs:
        timeline = r["timeline"]
        assert timeline["origin"] == "deadline" and timeline["looks"] >= 10, timeline
        assert r["reaped_after"] is not None, timeline
        assert r["reaped_after"] - r["overshoot"] <= MAX_REAP, (r["reaped_after"], r["overshoot"])
        # the helpers stay: what is left after the step is the forkserver and the resource tracker
        assert sorted(role for *_, role in timeline["samples"][-1]["p"]) == ["forkserver", "resource_tracker"]
    # The step itself: measured in 6 of 6 timeouts here (the task was still 'R' at the first look,
    # right after the return, gone at the next); the forkserver may win that race now and then.
    stepped = [r for r in recs if r["reaped_last_seen"] is not None]
    assert stepped, [r["timeline"]["samples"] for r in recs]
    for r in stepped:
        # samples keep only the looks where the tree changed: the tree at a look is the last sample at or before it
        before = [s for s in r["timeline"]["samples"] if s["t"] <= r["reaped_last_seen"]][-1]
        assert _own_states(r, before), before
        assert r["reaped_last_seen"] < r["reaped_after"]


@pytest.mark.built
@pytest.mark.slow
def test_the_timeline_under_fork_shows_the_child_still_running(run_314):
    """Under fork the timed-out child ignores SIGTERM (Celery's handler, inherited), so no step: it runs through the window."""
    _, by_queue = run_314
    recs = by_queue["gil.process.fork"]
    assert {r["start_method"] for r in recs} == {"fork"}
    for r in recs:
        assert r["reaped_after"] is None, r["timeline"]
        last = r["timeline"]["samples"][-1]
        assert _own_states(r, last) and set(_own_states(r, last)) <= {"R", "S", "D"}, last
        # and the tree grows by one per iteration: the earlier children run on too
        assert sum(role == "task" for *_, role in last["p"]) == r["iteration"], last
        assert r["leftovers"][0]["running_at_end"] is True  # 10 s queries, a run of about 3 s


@pytest.mark.built
@pytest.mark.slow
def test_the_timeline_under_spawn_shows_a_zombie_until_the_next_start(run_314):
    """Under spawn the killed child dies at once but stays a zombie: the worker's next Process.start() reaps it, after the window."""
    _, by_queue = run_314
    recs = by_queue["gil.process.spawn"]
    assert {r["start_method"] for r in recs} == {"spawn"}
    for r in recs:
        # a fresh interpreter keeps SIGTERM's default action: it dies; nobody waits for it in the window
        assert r["reaped_after"] is None, r["timeline"]
        assert _own_states(r, r["timeline"]["samples"][-1]) == ["Z"], r["timeline"]["samples"][-1]
        (item,) = r["leftovers"]
        assert item["ended_after"] is not None and item["ended_after"] < SETTLE, item
        assert item["cpu_to_end"] < 0.1, item
    # the follower saw iterations 1 and 2's zombies reaped when the next call started a process
    # (measured 0.59-0.62 s after their deadlines), the last one was still a zombie at the end
    for r in recs[:-1]:
        gone = r["leftovers"][0]["gone_after"]
        assert gone is not None and gone > r["timeline"]["samples"][-1]["t"], r["leftovers"]
    assert recs[-1]["leftovers"][0]["gone_after"] is None and recs[-1]["leftovers"][0]["state_at_end"] == "Z"


@pytest.mark.built
@pytest.mark.slow
def test_the_report_has_a_reaping_line_per_queue(run_314):
    """report.md says, per queue, when the killed task was reaped (or that it was not, and why it was still there)."""
    run_dir, _ = run_314
    report = (run_dir / "report.md").read_text()
    lines = {line.split(" ", 2)[1]: line for line in report.split("## Reaping", 1)[1].splitlines()
             if line.startswith("- ")}
    assert set(lines) == set(QUEUES_314), lines
    for queue in ("gil", "nogil"):
        assert "timeouts: reaped " in lines[queue] and "after the deadline p50" in lines[queue], lines[queue]
    assert "not reaped within the window" in lines["gil.process.fork"] and "3 still running" in lines["gil.process.fork"]
    assert "0 still running, 3 zombie(s)" in lines["gil.process.spawn"], lines["gil.process.spawn"]
    assert "the follower saw 2 reaped later" in lines["gil.process.spawn"], lines["gil.process.spawn"]
    assert (run_dir / "summary.png").stat().st_size > 0


# --- the control: calls that end in time ----------------------------------------------------------------


@pytest.mark.slow
def test_a_control_run_has_a_timeline_too(tmp_path):
    """Calls that end in time get the same timeline: under fork the finished child is a zombie through the window, not the timeout's doing."""
    # DUCKDB_TIMEOUT=5: a spawned (or forkserver) child's start-up alone took more than 0.5 s here,
    # so 1000 rows timed out at the default deadline under spawn.
    queues = ["gil.process.fork", "gil.process.forkserver", "gil.process.spawn"]
    env = labtest.base_env(tmp_path, TARGET_QUEUES=",".join(queues), DUCKDB_ROWS="1000", DUCKDB_TIMEOUT="5")

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    by_queue = _by_queue(labtest.only_run(tmp_path / "results"), queues, 2, outcome="ok")
    for queue, recs in by_queue.items():
        for r in recs:
            assert r["timeline"]["origin"] == "return" and r["timeline"]["samples"], r["timeline"]
            assert r["call_pids"], r  # each call started its process
            # none at all is fine: the forkserver may have reaped its finished child before the return
            assert [i for i in r["leftovers"] if i["running_at_end"]] == [], r["leftovers"]
    for r in by_queue["gil.process.fork"]:
        # the child exits once it has handed over the result (measured: a zombie at the first look
        # already); nobody waits for it until the next call's Process.start()
        assert r["reaped_after"] is None and _own_states(r, r["timeline"]["samples"][-1]) == ["Z"], r["timeline"]
    for r in by_queue["gil.process.forkserver"]:
        # the forkserver reaps its finished child itself, as it does a killed one
        assert r["reaped_after"] is not None and r["reaped_after"] <= MAX_REAP, r["timeline"]
    for r in by_queue["gil.process.spawn"]:
        # measured: still exiting ('R') for up to 70 ms after the return, then a zombie to the end
        assert r["reaped_after"] is None and _own_states(r, r["timeline"]["samples"][-1]) == ["Z"], r["timeline"]


@pytest.mark.slow
def test_a_call_that_left_nothing_is_not_reported_as_unfollowed(tmp_path):
    """An in-process strategy's records (nothing left behind) get their CPU to the end from the worker alone, not 'not followed'."""
    run_dir, r = labtest.quick_once(tmp_path, "gil.interrupt")
    assert r["leftovers"] == [] and r["follow_error"] is None, r
    assert r["cpu_to_end"] == round(r["quiet"]["cpu_in_worker"], 3) and r["running_at_end"] == 0, r
    assert "not followed" not in (run_dir / "summary.txt").read_text()
