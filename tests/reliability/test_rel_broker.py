"""The broker down at start, and restarted mid-run.

Down at start: producer and worker count down once a second for BROKER_CONNECT_SECONDS, then
say one line naming BROKER_URL and exit 2 (the worker before Celery's own retries, which end in
a traceback). Restarted mid-run (SIGKILL, same port, same data): the worker reconnects and goes
on, the producer rides out the lost connection and reports every iteration as done or missing
before its deadline. Results that travel while the node is down are in the rpc:// reply queue,
which does not survive a restart: those iterations are measured again (their ack never reached
the broker) or reported missing, never waited for forever.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

import labtest
import reltest
from app.kernel import defaults
from labctl import procs
from producer.config import ProducerConfig

# Start-up on this machine (interpreter, imports, Celery), beyond what the code waits on purpose
# (BROKER_CONNECT_SECONDS, the producer's deadline): generous, overridable.
STARTUP = labtest.threshold("LAB_TEST_MAX_STARTUP_SECONDS", 15)
CELERY_STARTUP = labtest.threshold("LAB_TEST_MAX_WORKER_STARTUP_SECONDS", 30)


def _countdown(text: str, who: str, seconds: int) -> list[str]:
    lines = [line for line in text.splitlines() if line.startswith(f"[{who}] broker not reachable yet")]
    assert lines, text
    assert lines[0].endswith(f"retrying for {seconds}s more ...") or lines[0].endswith(
        f"retrying for {seconds - 1}s more ..."), lines
    return lines


def test_producer_with_no_broker_counts_down_then_says_one_line_and_exits_2(tmp_path):
    port = reltest.closed_port()
    penv = reltest.env(reltest.run_id(), BROKER_URL=f"amqp://lab:secret@127.0.0.1:{port}//",
                       BROKER_CONNECT_SECONDS="3", RESULTS_DIR=str(tmp_path / "results"))
    start = time.monotonic()
    done = reltest.run_producer(penv, timeout=60)
    elapsed = time.monotonic() - start

    assert done.returncode == 2, done.stdout + done.stderr
    assert len(_countdown(done.stdout, "producer", 3)) >= 2
    line = reltest.one_line(done.stderr)
    assert line.startswith(f"producer: BROKER_URL=amqp://lab:***@127.0.0.1:{port}//: broker unreachable after 3s"), line
    assert "BROKER_CONNECT_SECONDS" in line and "nothing was enqueued" in line and "secret" not in line
    # it counted down the whole BROKER_CONNECT_SECONDS, then gave up (not Celery's own retries)
    assert 3 <= elapsed < 3 + STARTUP, f"{elapsed:.1f}s (LAB_TEST_MAX_STARTUP_SECONDS={STARTUP:g})"
    assert not (tmp_path / "results").exists()


def test_worker_with_no_broker_counts_down_then_says_one_line_and_exits_2(tmp_path):
    port = reltest.closed_port()
    run = reltest.run_id()
    wenv = reltest.env(run, BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//", BROKER_CONNECT_SECONDS="3")
    start = time.monotonic()
    done = subprocess.run(reltest.worker_argv("gil", "nobroker"), env=wenv, cwd=reltest.REPO, capture_output=True,
                          text=True, timeout=60)
    elapsed = time.monotonic() - start

    assert done.returncode == 2, done.stdout + done.stderr
    _countdown(done.stderr, "worker", 3)
    ours = [line for line in done.stderr.splitlines() if line.startswith("worker:")]
    assert len(ours) == 1, done.stderr
    assert ours[0].startswith(f"worker: BROKER_URL=amqp://guest:***@127.0.0.1:{port}//: broker unreachable after 3s")
    assert "Traceback" not in done.stderr and "Unrecoverable error" not in done.stderr, done.stderr
    # Celery alone would retry 2+4+6... seconds; the bound is BROKER_CONNECT_SECONDS plus start-up.
    assert 3 <= elapsed < 3 + CELERY_STARTUP, f"{elapsed:.1f}s (LAB_TEST_MAX_WORKER_STARTUP_SECONDS={CELERY_STARTUP:g})"
    assert not procs.marked(run)


@pytest.mark.slow
def test_lab_quick_with_an_unreachable_broker_url_fails_fast_and_leaves_nothing(tmp_path):
    """A worker that cannot reach BROKER_URL is a component that failed: exit 1, its line and its log's tail, nothing left."""
    port = reltest.closed_port()
    run = reltest.run_id("rel-labdown")
    env = labtest.base_env(tmp_path, BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//", BROKER_CONNECT_SECONDS="2",
                           RUN_ID=run)
    start = time.monotonic()
    done = labtest.lab("quick", env=env, timeout=180)
    elapsed = time.monotonic() - start

    # runner.command: a component that failed (RuntimeError from wait_ready: the gil worker, the
    # first awaited, exited) is `lab quick: <its message>` and exit 1; the message ends with the
    # tail of that worker's log, which says why
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip(), done.stdout
    first, *tail = done.stderr.splitlines()
    assert first == "lab quick: worker gil exited before it was ready:", done.stderr
    log = (tmp_path / "results" / run / "logs" / "worker-gil.log").read_text(errors="replace").splitlines()
    assert tail and all(line in log for line in tail), f"stderr's tail is not the worker's log:\n{done.stderr}"
    assert any(line.startswith("worker: BROKER_URL=amqp://guest:***@127.0.0.1:") and "broker unreachable after 2s" in line
               for line in tail), done.stderr
    # the workers' countdown and start-up, the run's teardown: minutes would be Celery's own retries
    limit = labtest.threshold("LAB_TEST_MAX_FAIL_FAST_SECONDS", 120)
    assert 2 <= elapsed < limit, f"{elapsed:.1f}s (LAB_TEST_MAX_FAIL_FAST_SECONDS={limit:g})"
    assert not procs.marked(run)


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_broker_restarted_mid_run(tmp_path):
    """SIGKILL the node while iteration 2 runs, start it again on the same port: nothing hangs.

    What must come back as a timeout: every iteration the producer had before the kill (at least
    iteration 1), and every iteration the worker measured after it reconnected (at least the
    last, 5: it waited in the durable queue). Only the ones in between, measured while the node
    was down (their results travel in the reply queue the restart loses), may be missing; the
    producer exits 1 if one is, else 0.
    """
    labtest.need(reltest.rabbit.available(), "rabbitmq-server is not installed", missing="rabbitmq")
    run = reltest.run_id("rel-restart")
    node = reltest.Node(tmp_path, run)
    worker = producer = None
    iterations, grace = 5, 15
    try:
        # The worker may have to wait out the whole restart: give it a reconnect window to match.
        wenv = reltest.env(run, BROKER_URL=node.url, BROKER_CONNECT_SECONDS="120", CLEANUP_GRACE_SECONDS="0.2")
        worker = reltest.start_worker(tmp_path, "restart", "gil-clean", wenv)
        penv = reltest.env(f"{run}-producer", BROKER_URL=node.url, ITERATIONS=str(iterations), TARGET_QUEUES="gil-clean",
                           DUCKDB_TIMEOUT="0.3", RESULT_GRACE_SECONDS=str(grace),
                           RESULTS_DIR=str(tmp_path / "results"), RUN_ID=run)
        plog = open(tmp_path / "producer.log", "w")
        sent = time.monotonic()
        producer = subprocess.Popen([reltest.PYTHON, "-m", "producer"], env=penv, cwd=reltest.REPO, stdout=plog,
                                    stderr=subprocess.STDOUT)
        # Iteration 1's result reached the producer, iteration 2 has just been measured.
        reltest.wait_for(tmp_path / "producer.log", f"gil-clean: 1/{iterations} iter=1 outcome", timeout=90)
        reltest.wait_for(worker.log, "iter=2 outcome", timeout=90, proc=worker)
        node.kill()
        back_before_kill = {int(n) for n in re.findall(rf"gil-clean: \d+/{iterations} iter=(\d+) outcome",
                                                        (tmp_path / "producer.log").read_text())}
        took = node.restart()

        # The producer's own deadline, from its ProducerConfig: per-iteration allowance x iterations
        # + RESULT_GRACE_SECONDS; beyond it only its start-up and the wait for leftover answers.
        cfg = ProducerConfig.from_env(penv)
        budget = cfg.iteration_budget() * cfg.iterations + cfg.result_grace
        bound = budget + defaults.LEFTOVERS_REPLY_SECONDS + STARTUP
        code = producer.wait(timeout=bound + 30)
        elapsed = time.monotonic() - sent
        log = (tmp_path / "producer.log").read_text()
        assert elapsed < bound, f"{elapsed:.0f}s for a {budget:.0f}s deadline, bound {bound:.0f}s (restart took {took:.0f}s)"
        assert "[producer] broker connection lost" in log, log

        # The worker reconnected and measured the iterations that waited in the durable queue.
        wlog = reltest.wait_for(worker.log, f"iter={iterations} outcome", timeout=5)
        lost_at = wlog.index("Connection to broker lost")
        assert "Connected to amqp://" in wlog[lost_at:], wlog[lost_at:][:2000]
        assert procs.alive(worker.pid, worker.started), "the worker gave up instead of reconnecting"
        back_at = wlog.index("Connected to amqp://", lost_at)
        measured_after = {int(n) for n in re.findall(r"iter=(\d+) outcome=", wlog[back_at:])}
        measured = {int(n) for n in re.findall(r"iter=(\d+) outcome=", wlog)}
        assert measured == set(range(1, iterations + 1)), (
            f"expected the worker to measure every iteration 1..{iterations} (none lost from the durable queue), "
            f"got {sorted(measured)}")
        assert 1 in back_before_kill, f"iteration 1 was not back before the kill: {sorted(back_before_kill)}"
        assert iterations in measured_after, f"iteration {iterations} was not measured after the reconnect"

        recs = {r["iteration"]: r for r in labtest.records(tmp_path / "results" / run)}
        assert sorted(recs) == list(range(1, iterations + 1)), log
        outcomes = {n: r["outcome"] for n, r in sorted(recs.items())}
        must_return = sorted(back_before_kill | measured_after)
        in_flight = sorted(set(outcomes) - set(must_return))
        assert {n: outcomes[n] for n in must_return} == {n: "timeout" for n in must_return}, (
            f"expected iterations {must_return} (back before the kill: {sorted(back_before_kill)}, measured after "
            f"the reconnect: {sorted(measured_after)}) to come back as timeouts, got {outcomes}\n{log}")
        assert {outcomes[n] for n in in_flight} <= {"timeout", "missing"}, f"in flight {in_flight}: {outcomes}"
        missing = [n for n in in_flight if outcomes[n] == "missing"]
        assert code == (1 if missing else 0), f"expected exit {1 if missing else 0} (missing: {missing}), got {code}\n{log}"
        for n in missing:
            assert f"[producer] gil-clean: iter={n} missing after {budget:.0f}s" in log, log
        if missing:  # exit 1's one line
            assert f"producer: {len(missing)} iteration(s) missing" in log.splitlines(), log
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
            producer.wait()
        # the worker, then the node, by pid; what still carries the marker is looked at before the sweep
        left = reltest.stop_run(run, *(s for s in (worker, node.started) if s))
    # the node's private epmd daemonizes out of its process group: only the sweep stops it (rabbit.py)
    assert set(left.values()) <= {"epmd"}, f"still running once the test stopped the worker and the node: {left}"
    assert not procs.marked(run)
