"""A worker killed with SIGKILL mid-task: what happens to its iteration and to its task processes.

The lab acks early (app/broker.py), but with the solo pool Celery sends that ack from its event
loop, which the running task blocks: on RabbitMQ the message is still unacked when the worker
dies, so the broker re-delivers the iteration to the next worker, whose record says
`redelivered`. The filesystem broker has no such thing: the message is gone, and the producer
reports the iteration missing at its deadline. Either way the timed-out query the worker left
(fork: it ignores SIGTERM, having inherited Celery's handler) is orphaned to init, and
`scripts/lab down` finds it by its marker and stops it. See docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import labtest
import reltest
from app.kernel import defaults
from labctl import procs
from producer.config import ProducerConfig

# A query that runs far longer than the test: its task process is still there when we look.
LONG = {"QUERY_SECONDS": "600", "DUCKDB_TIMEOUT": "0.3"}
# What a producer may take beyond its collection deadline: its own start-up (this machine's) plus
# the wait for the workers' leftover answers (the producer's constant).
STARTUP = labtest.threshold("LAB_TEST_MAX_STARTUP_SECONDS", 15)


def _producer_env(run: str, url: str, tmp, iterations: int, grace: str) -> dict[str, str]:
    # Its own marker: while this test is its parent, a process of the workers' run would make
    # that run look owned, and `scripts/lab down` leaves owned runs alone.
    return reltest.env(f"{run}-producer", BROKER_URL=url, ITERATIONS=str(iterations), TARGET_QUEUES="gil",
                       RESULT_GRACE_SECONDS=grace, RESULTS_DIR=str(tmp / "results"), RUN_ID=run, **LONG)


def _producer(penv: dict[str, str], tmp) -> subprocess.Popen:
    log = open(tmp / "producer.log", "w")
    return subprocess.Popen([reltest.PYTHON, "-m", "producer"], env=penv, cwd=reltest.REPO, stdout=log,
                            stderr=subprocess.STDOUT)


def _kill_mid_task(worker: procs.Started) -> list[int]:
    """SIGKILL the worker once iteration 1 timed out (it is settling now); return its orphans."""
    reltest.wait_for(worker.log, "iter=1 outcome=timeout", timeout=60, proc=worker)
    orphans = reltest.children(worker.pid)
    reltest.kill9(worker)
    return orphans


def _down_stops_the_orphans(orphans: list[int], run: str, tmp) -> None:
    """The killed worker's task process is still running, re-parented to init; `scripts/lab down` stops it."""
    live = [pid for pid in orphans if procs.alive(pid)]
    assert live, f"the gil worker had no running task process when it was killed: {orphans}"
    assert all(procs.parent(pid) == 1 for pid in live), {p: procs.parent(p) for p in live}
    assert all(procs.run_of(pid) == run for pid in live)
    # `scripts/lab down` (own cache: no state files) finds the orphaned run by its marker.
    down = labtest.lab("down", env={**reltest.env("unused"), "LAB_CACHE": str(tmp / "cache")}, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"run {run}: {len(live)} orphaned lab process(es)" in down.stdout, down.stdout
    assert all(f" {pid}" in down.stdout for pid in live), down.stdout
    assert not procs.marked(run), f"still running after scripts/lab down: {procs.marked(run)}"


def _records(tmp, run: str) -> dict[int, dict]:
    return {r["iteration"]: r for r in labtest.records(tmp / "results" / run)}


@pytest.mark.slow
def test_sigkill_on_rabbitmq_redelivers_the_iteration_and_down_stops_the_orphan(rabbitmq, tmp_path):
    run = reltest.run_id("rel-kill")
    vhost = reltest.VHost(rabbitmq, run)
    wenv = reltest.env(run, BROKER_URL=vhost.url, SETTLE_SECONDS="2")
    first = reltest.start_worker(tmp_path, "first", "gil", wenv)
    second = None
    producer = _producer(_producer_env(run, vhost.url, tmp_path, iterations=2, grace="30"), tmp_path)
    try:
        orphans = _kill_mid_task(first)

        # The task process the worker forked is still running the query, re-parented to init.
        # It also holds the dead worker's AMQP socket (inherited by fork), so the broker does
        # not see that connection close: it would re-deliver only after the heartbeat times out.
        # Here `scripts/lab down` is part of the scenario; without RabbitMQ the filesystem test
        # below checks the same.
        _down_stops_the_orphans(orphans, run, tmp_path)

        # A second worker on the same queue gets iteration 1 again, then iteration 2.
        second = reltest.start_worker(tmp_path, "second", "gil", wenv)
        code = producer.wait(timeout=180)
        log = (tmp_path / "producer.log").read_text()
        assert code == 0, log
        recs = _records(tmp_path, run)
        assert sorted(recs) == [1, 2], recs.keys()
        assert {r["outcome"] for r in recs.values()} == {"timeout"}, recs
        assert recs[1]["worker"] == "second" and recs[1]["redelivered"] is True, recs[1]
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        left = reltest.stop_run(run, *(s for s in (second, first) if s))  # first: gone unless the test failed early
    assert not left, f"still running once the test stopped its workers (then swept): {left}"
    # the durable task queue must be listed, else "no message left" would read nothing
    queues = vhost.queues()
    assert "gil" in queues and not any(queues.values()), queues
    vhost.delete()


@pytest.mark.slow
def test_sigkill_on_the_filesystem_broker_loses_the_iteration_and_the_producer_says_so(tmp_path):
    run = reltest.run_id("rel-killfs")
    url = f"filesystem://{tmp_path / 'broker'}"
    wenv = reltest.env(run, BROKER_URL=url, SETTLE_SECONDS="2")
    first = reltest.start_worker(tmp_path, "first", "gil", wenv)
    second = None
    penv = _producer_env(run, url, tmp_path, iterations=1, grace="2")
    producer = _producer(penv, tmp_path)
    start = time.monotonic()
    try:
        # The orphaned task process and `scripts/lab down` need no particular broker: checked here too.
        _down_stops_the_orphans(_kill_mid_task(first), run, tmp_path)
        second = reltest.start_worker(tmp_path, "second", "gil", wenv)
        code = producer.wait(timeout=120)
        elapsed = time.monotonic() - start
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        left = reltest.stop_run(run, *(s for s in (second, first) if s))  # first: gone unless the test failed early
    assert not left, f"still running once the test stopped its workers (then swept): {left}"

    log = (tmp_path / "producer.log").read_text()
    # exit 1 (an iteration missing) with its one line, after the per-iteration line
    assert code == 1, log
    assert "producer: 1 iteration(s) missing" in log.splitlines(), log
    # The deadline is the producer's own budget (its ProducerConfig: one iteration's allowance x 1
    # iteration, plus RESULT_GRACE_SECONDS), which it states; the test's clock saw it wait that long.
    cfg = ProducerConfig.from_env(penv)
    budget = cfg.iteration_budget() * cfg.iterations + cfg.result_grace
    assert f"[producer] gil: iter=1 missing after {budget:.0f}s" in log, log
    (rec,) = labtest.records(tmp_path / "results" / run)
    assert rec["outcome"] == "missing" and "no result within" in rec["exception_message"], json.dumps(rec)
    bound = budget + defaults.LEFTOVERS_REPLY_SECONDS + STARTUP
    assert budget <= elapsed < bound, f"took {elapsed:.0f}s for a {budget:.0f}s budget (bound {bound:.0f}s)"
    assert "iter=1" not in (tmp_path / "worker-second.log").read_text(), "the lost message came back"
