"""runner.LocalRun, the one runner of `scripts/lab run|quick` and `scripts/lab claims`.

However its block ends (a return, an exception, Ctrl-C), a run stops exactly what it started,
by pid: the processes it started and did not stop yet (workers first, the broker last), then what
still carries its marker; never a process it did not start, nor one of another run. And
`scripts/lab down` leaves a live `scripts/lab claims` run alone (its state record names its owner).
Real processes throughout: a private RabbitMQ node, a Celery worker, a real `scripts/lab claims`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import labtest
from app.kernel import procfs
from labctl import native, procs, rabbit, runner

# A process of the run that starts one of its own in a session of its own: stopping the helper's
# process group cannot reach it, only the run's marker finds it.
HELPER = """
import subprocess, time
child = subprocess.Popen(["sleep", "600"], start_new_session=True)
print(f"grandchild {child.pid}", flush=True)
print(" ready.", flush=True)
time.sleep(600)
"""


def _run_id(what: str) -> str:
    return f"runner-{what}-{uuid.uuid4().hex[:6]}"


def _env(tmp_path: Path) -> dict[str, str]:
    return labtest.base_env(tmp_path, LAB_CACHE=str(tmp_path / "cache"))


def _gone(pid: int, started: int | None = None, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while procs.alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("how", ["return", "exception", "ctrl-c"])
def test_a_run_stops_exactly_what_it_started(tmp_path, how):
    run_id, other_run = _run_id(how), _run_id("other")
    env = _env(tmp_path)
    state_path = tmp_path / "cache" / "run" / f"{run_id}.json"
    lines: list[str] = []
    # Not the run's: one started by someone else, one of another run (the same marker, another id).
    bystander = subprocess.Popen(["sleep", "600"])
    other = subprocess.Popen(["sleep", "600"], env={**os.environ, procs.MARKER: other_run})
    seen: dict = {}
    expect = {"return": contextlib.nullcontext(), "exception": pytest.raises(RuntimeError, match="boom"),
              "ctrl-c": pytest.raises(KeyboardInterrupt)}[how]
    try:
        with expect:
            with runner.LocalRun(run_id, env, logs=tmp_path / "logs", broker="filesystem", say=lines.append) as run:
                url, desc = run.start_broker()
                assert (url, desc) == (f"filesystem://{run.work / 'broker'}", "embedded (kombu filesystem transport, no server)")
                helper = run.spawn("helper", [sys.executable, "-c", HELPER])
                early = run.spawn("early", ["sleep", "600"])
                run.wait_ready([helper], timeout=30)
                seen["grandchild"] = int(Path(helper.log).read_text().split("grandchild ")[1].split()[0])
                assert (tmp_path / "logs" / "helper.log").exists()
                # the state record: every pid it started and its owner, this process
                seen["record"] = json.loads(state_path.read_text())
                assert run.stop(early, grace=2.0) == "stopped"  # stopped by the run before its end: once only
                seen.update(helper=helper, early=early, marked=procs.marked(run_id))
                if how == "exception":
                    raise RuntimeError("boom")
                if how == "ctrl-c":
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(10)
                    pytest.fail("no KeyboardInterrupt")
        helper, early, grandchild = seen["helper"], seen["early"], seen["grandchild"]
        record = seen["record"]
        assert record["run_id"] == run_id
        assert record["owner"] == {"pid": os.getpid(), "started": procs.start_time(os.getpid())}
        assert [(s["name"], s["pid"]) for s in record["started"]] == [("helper", helper.pid), ("early", early.pid)]
        assert sorted(seen["marked"]) == sorted([helper.pid, grandchild]), seen["marked"]

        assert _gone(helper.pid, helper.started) and _gone(grandchild), lines
        assert not procs.marked(run_id)
        assert bystander.poll() is None and other.poll() is None, "a process the run did not start was stopped"
        assert not state_path.exists() and not (tmp_path / "cache" / "run" / run_id).exists()
        assert lines == [
            "[lab] broker: embedded (kombu filesystem transport, no server)",
            f"[lab] helper (pid {helper.pid}): stopped",
            f"[lab] stopped 1 leftover process(es) of run {run_id}: sleep {grandchild}",
        ], lines
    finally:
        for p in (bystander, other):
            p.kill()
            p.wait()
        swept = procs.sweep(run_id)  # clean-up only: the run itself must have left nothing to sweep
    assert swept == [], swept


def test_a_stopping_run_starts_nothing(tmp_path):
    run_id = _run_id("closing")
    with runner.LocalRun(run_id, _env(tmp_path), logs=tmp_path / "logs", say=lambda line: None) as run:
        pass
    with pytest.raises(RuntimeError, match="late: not started, the run is stopping"):
        run.spawn("late", ["sleep", "600"])
    assert not procs.marked(run_id)


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_workers_stop_first_and_the_broker_last(tmp_path):
    """A private RabbitMQ node and a real worker started from native's spec: the worker carries the
    run's environment and is stopped before the node; the node's epmd goes with the marker."""
    labtest.need(rabbit.available(), "rabbitmq-server is not installed", missing="rabbitmq")
    run_id = _run_id("rabbitmq")
    lines: list[str] = []
    spec = native.worker_spec("gil")
    with runner.LocalRun(run_id, _env(tmp_path), logs=tmp_path / "logs", say=lines.append) as run:
        run.env["CALIBRATION_DIR"] = str(run.work / "calibration")
        url, desc = run.start_broker()
        assert url.startswith("amqp://guest:guest@127.0.0.1:") and desc.startswith("private RabbitMQ node (pid "), desc
        worker = run.start_worker(spec, sys.executable)
        assert (worker.name, worker.log) == ("worker gil", str(tmp_path / "logs" / "worker-gil.log"))
        run.wait_ready([worker])
        environ = set(procfs.environ(worker.pid) or [])
        expected = {**spec.env(), "BROKER_URL": url, procs.MARKER: run_id, "CALIBRATION_DIR": run.env["CALIBRATION_DIR"]}
        assert {f"{k}={v}".encode() for k, v in expected.items()} <= environ
        assert not any(item.startswith((b"PYTHON_GIL=", b"VIRTUAL_ENV=")) for item in environ)
        record = json.loads(run.state.path.read_text())
        assert [s["name"] for s in record["started"]] == ["rabbitmq", "worker gil"]
        marked = procs.marked(run_id)
    stops = [line.split(" (pid ")[0] for line in lines if " (pid " in line and "):" in line]
    assert stops == ["[lab] worker gil", "[lab] rabbitmq"], lines
    assert all(_gone(pid) for pid in marked), {pid: procs.name(pid) for pid in marked}
    assert not run.state.path.exists() and not run.work.exists()


@pytest.mark.slow
def test_down_leaves_a_live_claims_run_alone(tmp_path):
    """A real `scripts/lab claims` (claim 4 on a stand-in python that only sleeps): `scripts/lab down`
    says the run is still running and touches nothing; Ctrl-C then stops what the run started."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    run_id = _run_id("claims")
    env = _env(tmp_path)
    state_path = tmp_path / "cache" / "run" / f"{run_id}.json"
    log = open(tmp_path / "claims.log", "w")
    lab = subprocess.Popen([str(labtest.REPO / "scripts" / "lab"), "claims", "--claims", "4",
                            f"CLAIMS_PYTHONS=host={fake}", f"RUN_ID={run_id}"],
                           env=env, cwd=labtest.REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        started: list = []
        while len(started) < 2:  # claim 4 on one interpreter: two experiments, both at once (CLAIMS_PARALLEL=2)
            assert lab.poll() is None and time.monotonic() < deadline, (tmp_path / "claims.log").read_text()
            time.sleep(0.2)
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                started = [procs.Started(**s) for s in json.loads(state_path.read_text())["started"]]
        assert json.loads(state_path.read_text())["owner"]["pid"] == lab.pid

        down = labtest.lab("down", env=env, timeout=180)

        assert down.returncode == 0, down.stdout + down.stderr
        assert f"[lab] down: run {run_id} is still running (scripts/lab pid {lab.pid}): not touched" in down.stdout, \
            down.stdout
        assert all(procs.alive(p.pid, p.started) for p in started), down.stdout
        assert state_path.exists() and lab.poll() is None

        os.killpg(lab.pid, signal.SIGINT)  # Ctrl-C in its terminal: the jobs have sessions of their own
        code = lab.wait(timeout=60)
        left = procs.marked(run_id)  # what the run left, looked at before anything sweeps
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        log.close()
        swept = procs.sweep(run_id)  # clean-up only
    out = (tmp_path / "claims.log").read_text()
    assert code == 130, out
    for p in started:
        assert _gone(p.pid, p.started), out
        assert f"[claims] {p.name} (pid {p.pid}): stopped" in out, out
    assert left == [] and swept == [] and not state_path.exists(), (left, swept, out)
