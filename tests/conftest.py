"""Fixtures every part of the suite shares. Helpers live in labtest.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import labtest
import process_guard
from labctl import procs, rabbit


# A process that ends on its own this soon after its test is not left behind: RabbitMQ nodes run
# short helpers (`sh -c df ...` for the disk monitor, `erl` for a stop), which inherit the marker.
LEFTOVER_GRACE = labtest.threshold("LAB_TEST_LEFTOVER_GRACE", 3.0)

# Processes a session-scoped fixture started (the RabbitMQ node, its epmd): the session's own check
# covers them at the end; the test or module that happened to start the fixture does not own them.
SESSION_OWNED: set[int] = set()


def _check(scope: str, owned: set[int]) -> None:
    """Fail if this scope left a process running; kill it first (by pid), so one failure does not hang or cascade."""
    leftovers = process_guard.wait_left_behind(owned | SESSION_OWNED, LEFTOVER_GRACE)
    if leftovers:
        process_guard.kill(leftovers)
        pytest.fail(f"processes left running by this {scope}: {leftovers}", pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def no_process_left_by_the_session():
    """At the end of the session, after every fixture's teardown, nothing the session started may run."""
    before = set(process_guard.session_processes())
    yield
    SESSION_OWNED.clear()
    _check("session", before)


@pytest.fixture(autouse=True, scope="module")
def no_process_left_by_the_module():
    """At the end of a module, after its shared runs' teardown, nothing they started may run."""
    before = set(process_guard.session_processes())
    yield
    _check("module", before)


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """After every test, no process this session started may run that was not there before."""
    before = set(process_guard.session_processes())
    yield
    _check("test", before)


class Broker:
    """A private RabbitMQ node (labctl.rabbit) and a way to ask it about its queues."""

    def __init__(self, started: procs.Started, url: str, folder: Path, run_id: str):
        self.started, self.url, self.folder, self.run_id = started, url, folder, run_id

    def ctl_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HOME": str(self.folder), "RABBITMQ_NODENAME": f"lab-{self.run_id}@localhost"})
        env.update({k: v for k, v in _node_env(self.folder).items()})
        return env

    def queue_depths(self) -> dict[str, int]:
        """Messages ready in each queue, from rabbitmqctl."""
        import subprocess

        out = subprocess.run(
            # the real script next to rabbitmq-server: /usr/sbin/rabbitmqctl runs as the rabbitmq
            # user, whose HOME (and so Erlang cookie) is not this node's
            [str(Path(rabbit.SERVER).with_name("rabbitmqctl")), "-q", "-n", f"lab-{self.run_id}@localhost",
             "list_queues", "name", "messages"],
            env=self.ctl_env(), capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        return labtest.queue_depths(out)


def _node_env(folder: Path) -> dict[str, str]:
    env = {}
    for line in (folder / "node.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


@pytest.fixture(scope="session")
def rabbitmq():
    """A real RabbitMQ node for the session, stopped by pid at the end."""
    labtest.need(rabbit.available(), "rabbitmq-server is not installed (apt-get install rabbitmq-server)", "rabbitmq")
    folder = Path(tempfile.mkdtemp(prefix="lab-test-rabbit-"))
    run_id = f"test-{os.getpid()}"
    before = set(process_guard.session_processes())
    started, url = rabbit.start(folder, os.environ, run_id)
    SESSION_OWNED.update(set(process_guard.session_processes()) - before)
    try:
        yield Broker(started, url, folder, run_id)
    finally:
        procs.stop(started)
        procs.sweep(run_id)
        shutil.rmtree(folder, ignore_errors=True)


# Fixtures that put a test on RabbitMQ where rabbitmq-server is installed (else the embedded broker).
ON_RABBITMQ = {"rabbitmq", "claims_run", "pools_run"}
# CI's full pass runs the tests carrying one of these (.ci/run: -m "built or docker or rabbitmq"),
# so a test that skips in the newcomer's pass must carry one, or no pass would run it.
FULL_PASS_MARKERS = ("built", "docker", "rabbitmq")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ON_RABBITMQ & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.rabbitmq)


def _skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _skip_kind(report, allowed: tuple[str, ...]) -> str:
    """What a skip lacked, if it may skip for that here (and, in the newcomer's pass, if CI's full pass runs it)."""
    reason = _skip_reason(report)
    kind = next((a for a in allowed if reason.startswith(f"{a}: ")), None)
    if kind is None:
        return f"NOT ALLOWED: {report.nodeid}: {reason}"
    if labtest.NEWCOMER and kind != labtest.NO_WHEEL and not any(m in report.keywords for m in FULL_PASS_MARKERS):
        return f"NOT MARKED {'/'.join(FULL_PASS_MARKERS)}, so no CI pass runs it: {report.nodeid}: {reason}"
    return kind


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a skip must say it lacks what the machine may lack (and carry its marker); any other fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not labtest.CI or reporter is None:
        return
    allowed = (labtest.NO_WHEEL, *(labtest.MISSING.values() if labtest.NEWCOMER else ()))
    counts: dict[str, int] = {}
    for report in reporter.stats.get("skipped", []):
        kind = _skip_kind(report, allowed)
        counts[kind] = counts.get(kind, 0) + 1
    reporter.write_line("")
    reporter.write_sep("=", f"skips by reason (allowed under CI: {', '.join(allowed)})")
    for kind, n in sorted(counts.items()):
        reporter.write_line(f"{n:5d}  {kind}")
    if any(kind.startswith("NOT ") for kind in counts):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
