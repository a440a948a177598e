"""Teardown: after `scripts/lab quick` and after `scripts/lab down`, nothing the lab made is left.

No process carrying the run's marker, no state file, no work folder (the private broker's data,
the embedded broker's messages), nothing in TMPDIR (multiprocessing's pymp-* folders), and on a
given broker no queue of the run still holding messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

import labtest
import reltest
from labctl import paths, procs


def _leftovers(tmp_path, run: str, grace: float = 0.0) -> list[str]:
    """What the run left: its processes (after `grace` seconds to end), state file, work folder, temp files."""
    found = []
    running = reltest.leftovers(run, grace)
    if running:
        found.append(f"processes {running}")
    state = paths.cache_root() / "run" / f"{run}.json"
    work = paths.cache_root() / "run" / run
    found += [f"{p}" for p in (state, work) if p.exists()]
    found += [f"TMPDIR: {p}" for p in (tmp_path / "tmp").iterdir()]
    return found


@pytest.mark.slow
def test_quick_on_a_given_broker_leaves_no_process_file_or_message(rabbitmq, tmp_path):
    run = reltest.run_id("rel-teardown")
    vhost = reltest.VHost(rabbitmq, run)
    (tmp_path / "tmp").mkdir()
    env = labtest.base_env(tmp_path, BROKER_URL=vhost.url, RUN_ID=run, ITERATIONS="1", TMPDIR=str(tmp_path / "tmp"),
                           DUCKDB_TIMEOUT="0.2")

    done = labtest.lab("quick", env=env, timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not _leftovers(tmp_path, run)
    queues = vhost.queues()
    # The task queues are durable and stay (empty): both must be listed, or the check below reads
    # nothing; the producer's rpc reply queue and the workers' remote-control queues are
    # auto-delete and went with their connections.
    assert set(queues) == {"gil", "gil-clean"}, queues
    assert queues == {"gil": 0, "gil-clean": 0}, queues
    vhost.delete()


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["filesystem", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def test_down_after_the_lab_itself_was_killed_stops_everything(tmp_path, broker):
    """SIGKILL `scripts/lab quick` mid-run (embedded broker, or a private RabbitMQ node): `scripts/lab down` cleans up.

    The embedded broker needs no server, so this runs everywhere; the RabbitMQ case adds the
    node (and its epmd) to what down must stop.
    """
    if broker == "rabbitmq":
        labtest.need(reltest.rabbit.available(), "rabbitmq-server is not installed", missing="rabbitmq")
    run = reltest.run_id("rel-crash")
    (tmp_path / "tmp").mkdir()
    env = labtest.base_env(tmp_path, RUN_ID=run, ITERATIONS="3", TMPDIR=str(tmp_path / "tmp"), LAB_BROKER=broker,
                           QUERY_SECONDS="600", DUCKDB_TIMEOUT="0.3", SETTLE_SECONDS="1")
    # workers and the producer (and with RabbitMQ the node), plus the gil worker's task process
    names = ["worker gil", "worker gil-clean"] + (["rabbitmq"] if broker == "rabbitmq" else [])
    log = open(tmp_path / "lab.log", "w")
    lab = subprocess.Popen([str(reltest.REPO / "scripts" / "lab"), "quick"], env=env, cwd=reltest.REPO, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        worker_log = tmp_path / "results" / run / "logs" / "worker-gil.log"
        reltest.wait_for(worker_log, "iter=1 outcome", timeout=180)
        os.kill(lab.pid, signal.SIGKILL)
        lab.wait()
        left = {pid: procs.name(pid) for pid in procs.marked(run)}
        state = json.loads((paths.cache_root() / "run" / f"{run}.json").read_text())
        assert set(names) <= {s["name"] for s in state["started"]}, state["started"]
        # the recorded ones, the producer and the gil worker's task process
        at_least = len(names) + 2
        assert len(left) >= at_least, f"expected at least {at_least} processes of the run, got {left}"

        down = labtest.lab("down", env=labtest.base_env(tmp_path, TMPDIR=str(tmp_path / "tmp")), timeout=180)

        assert down.returncode == 0, down.stdout + down.stderr
        assert f"of run {run}" in down.stdout, down.stdout
        # Looked at before anything else stops a process: what `down` left is still running here.
        assert not _leftovers(tmp_path, run, grace=10.0), down.stdout
        for name in names:
            assert f"[lab] down: {name} (pid " in down.stdout, down.stdout
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        log.close()
        swept = reltest.sweep(run)  # clean-up only: what it finds fails the test below
    assert not swept, f"procs.sweep had to stop processes `scripts/lab down` left running: {swept}"
