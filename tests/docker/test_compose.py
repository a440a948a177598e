"""The Docker Compose lab, end to end, with a real engine: the article's commands, verbatim.

    docker compose build
    docker compose up                        (here `up -d`, then `docker compose logs`)
    docker compose up -d rabbitmq worker-gil worker-gil-clean
    docker compose run --rm producer
    docker compose logs worker-gil
    docker compose run --rm -e TARGET_QUEUES=gil -e ITERATIONS=5 -e DUCKDB_ROWS=1000000000 -e DUCKDB_TIMEOUT=0.2 producer
    docker compose up -d worker-nogil
    docker compose down

Each runs as written after `docker compose -p <project of its own>` (so a lab you have running is
never touched), with the broker published on free loopback ports and ./results redirected to a
temp dir. The tests run in file order and share one project; plain `up` runs last, from nothing (the
article's containers taken down first), and the last test takes it down and checks that no
container, network or process of it is left.

No engine: skipped with the reason on a developer machine, a failure under CI=true. The images are
built by the first test (the engine's cache makes a warm rebuild take seconds; a cold one, see
docs/docker.md). On a machine without Docker Hub, run scripts/docker-bootstrap first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import labtest
from app.kernel import axes, settings
from labctl import compose_matrix

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = labtest.REPO
PROJECT = f"gtl-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
# The test builds its own tags (from the same layer cache, so a warm build takes seconds) and
# removes them at the end: it never retags or removes the images `docker compose build` made.
LAB_IMAGE = "gil-timeout-lab-test/lab"
BUILD_TIMEOUT = float(os.environ.get("LAB_TEST_DOCKER_BUILD_TIMEOUT", 3600))
# Small, so the suite stays fast; no DUCKDB_ROWS: each worker sizes the query from its calibration.
SMALL = {"ITERATIONS": "2", "DUCKDB_TIMEOUT": "0.3"}
# Variables docker-compose.yml interpolates: the test decides them, never the caller's shell.
COMPOSE_VARS = (
    "ITERATIONS", "DUCKDB_ROWS", "DUCKDB_TIMEOUT", "QUERY_SECONDS", "TARGET_QUEUES", "SETTLE_SECONDS", "RESULT_GRACE_SECONDS",
    "RUN_ID", "TIMEOUT_STRATEGY", "START_METHOD", "WORKLOAD", "CLEANUP_GRACE_SECONDS", "DUCKDB_THREADS", "WORKER_INIT",
    "RESULTS_HOST_DIR", "RABBITMQ_PORT", "RABBITMQ_MANAGEMENT_PORT", "FLOWER_PORT", "COMPOSE_PROJECT_NAME",
    "COMPOSE_FILE", "COMPOSE_PROFILES", "PYTHON_GIL", "LAB_RUN_ID", "LAB_IMAGE",
)
READY = {
    "worker-gil": re.compile(r"worker=gil queue=gil .*gil_enabled=(True|False)"),
    "worker-gil-clean": re.compile(r"worker=gil-clean queue=gil-clean .*gil_enabled=(True|False)"),
    "worker-nogil": re.compile(r"worker=nogil queue=nogil .*gil_enabled=(True|False)"),
}


def _engine_reachable() -> tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "no docker CLI on PATH (scripts/install-docker install)"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        return False, "`docker info` timed out"
    if info.returncode != 0:
        return False, f"no Docker engine reachable (scripts/install-docker start): {info.stderr.strip()[:200]}"
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if version.returncode != 0:
        return False, "docker compose v2 plugin missing (scripts/install-docker install)"
    return True, ""


class Lab:
    """One compose project of this test run."""

    def __init__(self, results: Path):
        self.results = results
        self.env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS and not k.startswith("PYTEST_")}
        self.env.update({"RESULTS_HOST_DIR": str(results), "RABBITMQ_PORT": "", "RABBITMQ_MANAGEMENT_PORT": "",
                         "FLOWER_PORT": "", "LAB_IMAGE": LAB_IMAGE})
        self.container_ids: set[str] = set()

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`docker compose -p PROJECT ARGS`; env: variables docker-compose.yml interpolates, for this call."""
        cmd = ["docker", "compose", "-p", PROJECT, *args]
        proc = subprocess.run(cmd, cwd=REPO, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                        f"stderr:\n{proc.stderr[-4000:]}")
        return proc

    def logs(self, service: str, since: str | None = None) -> str:
        args = ["logs", "--no-log-prefix", "--no-color"] + (["--since", since] if since else []) + [service]
        proc = self.compose(*args, timeout=60)
        return proc.stdout + proc.stderr

    def remember_containers(self) -> None:
        out = self.compose("ps", "-a", "-q", "--no-trunc", timeout=60).stdout
        self.container_ids |= {line.strip() for line in out.splitlines() if line.strip()}

    def wait_ready(self, service: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.logs(service)
            match = READY[service].search(text)
            if match:
                return match
            state = self.compose("ps", "-a", "--format", "{{.State}}", service, timeout=60).stdout.strip()
            if state and state not in ("running", "created", "restarting"):
                pytest.fail(f"{service} is {state}:\n{text[-3000:]}")
            time.sleep(2)
        pytest.fail(f"{service} not ready after {timeout:.0f}s:\n{text[-3000:]}")

    def services(self) -> dict[str, dict[str, str]]:
        """The project's containers by service: state, exit code and health, as `docker compose ps -a` says."""
        out = self.compose("ps", "-a", "--format", "{{.Service}}\t{{.State}}\t{{.ExitCode}}\t{{.Health}}",
                           timeout=60).stdout
        rows = (line.split("\t") for line in out.splitlines() if line.strip())
        return {r[0]: {"state": r[1], "exit": r[2], "health": r[3] if len(r) > 3 else ""} for r in rows}

    def wait_exited(self, service: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.services().get(service)
            if row and row["state"] == "exited":
                return row
            time.sleep(2)
        pytest.fail(f"{service} still not done after {timeout:.0f}s: {self.services()}\n"
                    f"{self.compose('logs', '--no-color', timeout=60).stdout[-4000:]}")

    def queue_depths(self) -> dict[str, int]:
        out = self.compose("exec", "-T", "rabbitmq", "rabbitmqctl", "-q", "list_queues", "name", "messages",
                           timeout=120).stdout
        return labtest.queue_depths(out)

    def project_leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={PROJECT}"
        containers = subprocess.run(["docker", "ps", "-a", "-q", "--filter", label], capture_output=True, text=True,
                                    timeout=60).stdout.split()
        networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", label], capture_output=True,
                                  text=True, timeout=60).stdout.split()
        return {"containers": containers, "networks": networks}


def _env_flags(values: dict[str, str]) -> list[str]:
    return [arg for k, v in values.items() for arg in ("-e", f"{k}={v}")]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _producer_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("producer:")]


def _run_dir_for(stdout: str, results: Path) -> Path:
    match = re.search(r"records: /results/([^/\s]+)/records\.jsonl", stdout)
    assert match, f"the producer did not print where its records are:\n{stdout[-3000:]}"
    run_dir = results / match.group(1)
    assert (run_dir / "records.jsonl").is_file(), f"no {run_dir}/records.jsonl on the host"
    return run_dir


def _by_service(logs: str) -> dict[str, str]:
    """`docker compose logs` (prefixed) split per service: `worker-gil-1  | text` -> {"worker-gil": "text\n..."}."""
    out: dict[str, list[str]] = {}
    for line in logs.splitlines():
        prefix, bar, text = line.partition("|")
        if not bar:
            continue
        service = re.sub(r"-\d+$", "", prefix.strip())
        out.setdefault(service, []).append(text[1:] if text.startswith(" ") else text)
    return {service: "\n".join(lines) + "\n" for service, lines in out.items()}


def _copy_logs(lab: Lab, run_dir: Path, since: str, queues: list[str]) -> None:
    """Put each worker's log of this run where labtest.assert_article_behaviour reads it."""
    (run_dir / "logs").mkdir(exist_ok=True)
    for queue in queues:
        (run_dir / "logs" / f"worker-{queue}.log").write_text(lab.logs(f"worker-{queue}", since=since))


@pytest.fixture(scope="module")
def lab():
    ok, reason = _engine_reachable()
    labtest.need(ok, reason, missing="docker")
    results = Path(tempfile.mkdtemp(prefix="lab-docker-results-"))
    the_lab = Lab(results)
    try:
        yield the_lab
    finally:
        # Whatever happened above: take the project down so nothing outlives the tests.
        try:
            the_lab.remember_containers()
        except BaseException:
            pass
        subprocess.run(["docker", "compose", "-p", PROJECT, "--profile", "*", "down", "--remove-orphans",
                        "--timeout", "20"], cwd=REPO, env=the_lab.env, capture_output=True, timeout=300)
        subprocess.run(["docker", "image", "rm", f"{LAB_IMAGE}:gil", f"{LAB_IMAGE}:nogil"], capture_output=True,
                       timeout=300)
        subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                       capture_output=True, timeout=300)
        shutil.rmtree(results, ignore_errors=True)


def test_dockerfiles_differ_only_in_the_gil():
    """Dockerfile.gil and Dockerfile.nogil: the configure flag, the build check and PYTHON_GIL, nothing else."""
    gil = (REPO / "Dockerfile.gil").read_text().splitlines()
    nogil = (REPO / "Dockerfile.nogil").read_text().splitlines()
    assert len(gil) == len(nogil)
    diff = [(a, b) for a, b in zip(gil, nogil) if a != b]
    assert len(diff) == 3, diff
    (conf_a, conf_b), (env_a, env_b), (check_a, check_b) = diff
    # The configure flags are the build script's arguments (docker/build-cpython.sh).
    assert conf_a.strip() == "sh /tmp/build-cpython.sh" and conf_b.strip() == "sh /tmp/build-cpython.sh --disable-gil"
    assert (env_a, env_b) == ("ENV PYTHON_GIL=1", "ENV PYTHON_GIL=0")
    assert "Py_GIL_DISABLED" in check_a and check_b == check_a.replace("expected = 0", "expected = 1")


def _config(*args: str) -> str:
    """`docker compose ARGS` in the repo, for `config` (the CLI and its Compose plugin, no engine), from a clean environment."""
    cli = shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    labtest.need(bool(cli) and cli.returncode == 0, "no docker CLI with the Compose v2 plugin (scripts/install-docker install)",
                 missing="docker")
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
    proc = subprocess.run(["docker", "compose", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`docker compose {' '.join(args)}` exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


ARTICLE_SERVICES = {"rabbitmq", "worker-gil", "worker-gil-clean", "worker-nogil", "experiment"}


def test_the_matrix_comes_from_its_own_file_and_plain_up_starts_none_of_it():
    """docker-compose.yml holds the article's services and includes the generated docker-compose.matrix.yml:
    without a profile Compose sees the article's five, with one the profile's services as well."""
    assert set(_config("config", "--services").split()) == ARTICLE_SERVICES
    assert set(_config("config", "--profiles").split()) == {"producer", "observe", "claims",
                                                             *(p.name for p in compose_matrix.PROFILES)}
    assert set(_config("--profile", "observe", "config", "--services").split()) == ARTICLE_SERVICES | {"flower"}
    assert set(_config("--profile", "claims", "config", "--services").split()) == ARTICLE_SERVICES | {"claims", "claims-nogil"}
    for profile in compose_matrix.PROFILES:
        cells = {compose_matrix.service_name(q, profile.prefix) for q in profile.queues()}
        assert set(_config("--profile", profile.name, "config", "--services").split()) == ARTICLE_SERVICES | cells


def test_each_matrix_cell_is_the_article_worker_of_its_build_on_its_own_queue():
    """A cell resolves to worker-gil / worker-nogil (image, build, healthcheck, init, depends_on, environment)
    but for its profile, its queue's variables, its pool's command and no fixed hostname."""
    services = json.loads(_config("--profile", "*", "config", "--format", "json"))["services"]
    own = {"QUEUE", "WORKER_NAME", "TIMEOUT_STRATEGY", "START_METHOD", "WORKLOAD"}
    for profile in compose_matrix.PROFILES:
        for queue in profile.queues():
            spec = axes.parse_queue(queue)
            cell, worker = services[compose_matrix.service_name(queue, profile.prefix)], services[f"worker-{spec.build}"]
            assert cell["profiles"] == [profile.name] and "hostname" not in cell, cell
            env = cell["environment"]
            assert (env["QUEUE"], env["WORKER_NAME"], env["TIMEOUT_STRATEGY"], env["WORKLOAD"]) == \
                (queue, queue, spec.strategy, spec.workload), env
            assert env["START_METHOD"] == (spec.start_method or worker["environment"]["START_METHOD"]), env
            assert {k: v for k, v in env.items() if k not in own} == \
                {k: v for k, v in worker["environment"].items() if k not in own}, queue
            assert " ".join(axes.POOLS[spec.pool].argv()) in cell["command"][-1], cell["command"]
            rest = {k: v for k, v in cell.items() if k not in ("profiles", "environment", "command")}
            assert rest == {k: v for k, v in worker.items() if k not in ("hostname", "environment", "command")}, queue


def test_build(lab):
    proc = lab.compose("build", timeout=BUILD_TIMEOUT)
    for tag in ("gil", "nogil"):
        image = f"{LAB_IMAGE}:{tag}"
        inspect = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.User}}", image],
                                 capture_output=True, text=True, timeout=60)
        assert inspect.returncode == 0, f"{image} missing after build: {proc.stderr[-2000:]}"
        assert inspect.stdout.strip() == "lab", f"{image} does not run as the non-root user: {inspect.stdout!r}"


def test_up_gil_workers(lab):
    lab.compose("up", "-d", "rabbitmq", "worker-gil", "worker-gil-clean", timeout=600)
    lab.remember_containers()
    for service in ("worker-gil", "worker-gil-clean"):
        assert lab.wait_ready(service).group(1) == "True"
    # init: true - the worker runs under Docker's tini, which reaps what gets orphaned.
    top = lab.compose("top", "worker-gil", timeout=60).stdout
    assert "docker-init" in top or "tini" in top, top
    # The services named and nothing else: neither worker-nogil nor the `up`-only experiment.
    assert set(lab.services()) == {"rabbitmq", "worker-gil", "worker-gil-clean"}, lab.services()


def test_producer_default_targets(lab):
    since = _now()
    proc = lab.compose("run", "--rm", *_env_flags(SMALL), "producer", timeout=600)
    assert "children/zombies now" in proc.stdout, proc.stdout  # the summary table's header
    assert re.search(r"^gil\s", proc.stdout, re.M) and re.search(r"^gil-clean\s", proc.stdout, re.M), proc.stdout
    run_dir = _run_dir_for(proc.stdout, lab.results)
    owner = (run_dir / "records.jsonl").stat().st_uid
    assert owner != 0, "the producer wrote its records as root"
    # `run` starts what the producer depends on: the broker, not worker-nogil (nor the experiment).
    assert set(lab.services()) == {"rabbitmq", "worker-gil", "worker-gil-clean"}, lab.services()
    _copy_logs(lab, run_dir, since, ["gil", "gil-clean"])
    by_queue = labtest.assert_article_behaviour(run_dir, ["gil", "gil-clean"], int(SMALL["ITERATIONS"]))
    for queue, records in by_queue.items():
        assert {r["build"] for r in records} == {"gil"} and {r["gil_enabled"] for r in records} == {True}, records
    # `docker compose logs worker-gil` shows the article's line.
    assert labtest.ITER_LINE.search(lab.logs("worker-gil")), "no `iter=N outcome=... children=N zombies=N` line"
    remaining = [m[2] for m in labtest.CLEANUP_LINE.findall(lab.logs("worker-gil-clean"))]
    # at least this run's iterations (the log keeps earlier runs'), every one remaining=0
    assert len(remaining) >= int(SMALL["ITERATIONS"]) and set(remaining) == {"0"}, remaining


def test_article_override_run(lab):
    """The article's second run, verbatim: five iterations, 0.2 s timeout, 1e9 rows, gil only."""
    since = _now()
    proc = lab.compose("run", "--rm", "-e", "TARGET_QUEUES=gil", "-e", "ITERATIONS=5", "-e", "DUCKDB_ROWS=1000000000",
                       "-e", "DUCKDB_TIMEOUT=0.2", "producer", timeout=900)
    run_dir = _run_dir_for(proc.stdout, lab.results)
    _copy_logs(lab, run_dir, since, ["gil"])
    recs = labtest.records(run_dir)
    assert len(recs) == 5 and {r["timeout"] for r in recs} == {0.2}, recs
    assert {r["rows"] for r in recs} == {1_000_000_000}
    # 1e9 rows of the article's query is fixed work: whether it outlasts 0.2 s depends on the machine, so
    # the worker's own calibration says which the run must show (a machine 4x ours would end it in time)
    if min(r["expected_seconds"] for r in recs) > 2 * 0.2:
        labtest.assert_article_behaviour(run_dir, ["gil"], 5)
    elif max(r["expected_seconds"] for r in recs) < 0.2 / 2:
        assert "nothing timed out" in (run_dir / "summary.txt").read_text()


def test_invalid_override_enqueues_nothing(lab):
    """DUCKDB_TIMEOUT=-1: exit 2, one line naming the variable and its range, no message published.

    TARGET_QUEUES=nogil while no nogil worker runs: a message, had one been sent, would still be
    sitting in that queue. The gil workers' logs must not show a task received either.
    """
    received = {s: lab.logs(s).count("Task tasks.leak_demo[") for s in ("worker-gil", "worker-gil-clean")}
    proc = lab.compose("run", "--rm", "-e", "TARGET_QUEUES=nogil", "-e", "DUCKDB_TIMEOUT=-1", "producer",
                       timeout=300, check=False)
    # bad input is the producer's exit 2 (producer/__main__.py), which `docker compose run` passes on
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = _producer_lines(proc.stderr)
    low, high = settings.SETTINGS["DUCKDB_TIMEOUT"].bounds
    assert len(lines) == 1 and lines[0].startswith("producer: DUCKDB_TIMEOUT"), proc.stderr
    assert "expected" in lines[0] and f"from {low:g} to {high:g}" in lines[0], lines[0]
    assert proc.stdout.strip() == "", proc.stdout
    depths = lab.queue_depths()
    # the gil workers' durable queues must be listed, else "every queue is empty" would read nothing
    assert {"gil", "gil-clean"} <= set(depths), depths
    assert depths.get("nogil", 0) == 0 and all(n == 0 for n in depths.values()), depths
    time.sleep(1)
    assert {s: lab.logs(s).count("Task tasks.leak_demo[") for s in received} == received


def test_nogil_worker(lab):
    lab.compose("up", "-d", "worker-nogil", timeout=600)
    lab.remember_containers()
    assert lab.wait_ready("worker-nogil").group(1) == "False", "the nogil worker runs with the GIL on"
    since = _now()
    proc = lab.compose("run", "--rm", "-e", "TARGET_QUEUES=nogil", *_env_flags(SMALL),
                       "producer", timeout=600)
    run_dir = _run_dir_for(proc.stdout, lab.results)
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines() if line.strip()]
    assert [r["iteration"] for r in records] == [1, 2], records
    assert {(r["build"], r["gil_enabled"], r["outcome"]) for r in records} == {("nogil", False, "timeout")}, records
    lines = labtest.ITER_LINE.findall(lab.logs("worker-nogil", since=since))
    assert [int(n) for n, *_ in lines] == [1, 2], lines


def test_pools_profile_cells_behave_as_the_capability_table_says(lab):
    """`--profile pools`: generated threads and gevent workers serve their cells as docs/pools.md says."""
    cells = {"gil.interrupt.threads": ("timeout", "threads"), "gil.signals.threads": ("error", "threads"),
             "gil.interrupt.gevent": ("ok", "gevent")}
    services = [compose_matrix.service_name(q, "pool-") for q in cells]
    lab.compose("--profile", "pools", "up", "-d", "--wait", *services, timeout=600)
    lab.remember_containers()
    try:
        proc = lab.compose("run", "--rm", "-e", f"TARGET_QUEUES={','.join(cells)}", "-e", "ITERATIONS=1",
                           "-e", "DUCKDB_TIMEOUT=0.3", "-e", "QUERY_SECONDS=3", "producer", timeout=600)
        run_dir = _run_dir_for(proc.stdout, lab.results)
        records = {r["queue"]: r for r in labtest.records(run_dir)}
        got = {q: (records[q]["outcome"], records[q]["pool"]) for q in cells}
        assert got == cells, got
        assert records["gil.signals.threads"]["exception_type"] == "ValueError"  # SIGALRM: main thread only
        assert records["gil.interrupt.gevent"]["elapsed"] > 0.3  # the watchdog greenlet ran only after the query
    finally:
        lab.compose("--profile", "pools", "rm", "-s", "-f", *services, timeout=300, check=False)


def test_plain_up_runs_one_round_on_all_three_workers(lab):
    """`docker compose up`, from nothing: the experiment waits for the three workers to be healthy,
    runs one round on gil, gil-clean and nogil, prints the summary and exits 0; the workers stay up,
    and `docker compose up experiment` runs another round on them."""
    lab.remember_containers()
    lab.compose("down", timeout=300)  # the article's containers: `up` starts from an empty project
    assert lab.project_leftovers() == {"containers": [], "networks": []}
    queues = ["gil", "gil-clean", "nogil"]
    since = _now()
    lab.compose("up", "-d", env=SMALL, timeout=900)
    lab.remember_containers()
    row = lab.wait_exited("experiment", timeout=600)
    logs = lab.compose("logs", "--no-color", timeout=60).stdout
    assert row["exit"] == "0", f"the experiment exited {row}:\n{logs[-4000:]}"
    by_service = _by_service(logs)
    out = by_service.get("experiment", "")
    assert re.search(r"^\[producer\] run \S+: sent 6 task\(s\) to gil, gil-clean, nogil ", out, re.M), out
    assert "children/zombies now" in out, out  # the summary table's header
    for queue in queues:
        assert re.search(rf"^{re.escape(queue)}\s", out, re.M), f"no summary row for {queue}:\n{out}"
        assert [m[1] for m in labtest.PROGRESS_LINE.findall(out) if m[0] == queue] == ["1", "2"], out
        worker_out = by_service.get(f"worker-{queue}", "")
        assert [n for n, *_ in labtest.ITER_LINE.findall(worker_out)] == ["1", "2"], worker_out[-3000:]
    # The records tell the same story as the logs, with the article's behaviour for each worker.
    run_dir = _run_dir_for(out, lab.results)
    _copy_logs(lab, run_dir, since, queues)
    by_queue = labtest.assert_article_behaviour(run_dir, queues, int(SMALL["ITERATIONS"]))
    assert {(r["build"], r["gil_enabled"]) for r in by_queue["nogil"]} == {("nogil", False)}, by_queue["nogil"]
    assert {(r["build"], r["gil_enabled"]) for r in by_queue["gil"] + by_queue["gil-clean"]} == {("gil", True)}
    # The workers stay up (and healthy) for the next round; nothing else of `up` is left running.
    services = lab.services()
    for queue in queues:
        assert services[f"worker-{queue}"]["state"] == "running", services
        assert services[f"worker-{queue}"]["health"] == "healthy", services
    assert services["rabbitmq"]["state"] == "running", services
    assert set(services) == {"rabbitmq", "experiment", *(f"worker-{q}" for q in queues)}, services
    # Again, on the same workers: `docker compose up experiment` starts the exited container anew.
    again = lab.compose("up", "experiment", env=SMALL, timeout=600)
    assert re.search(r"^experiment-1\s+\| \[producer\] run \S+: sent 6 task\(s\)", again.stdout, re.M), again.stdout
    assert lab.services()["experiment"]["exit"] == "0" and lab.services()["worker-nogil"]["state"] == "running"


def _container_processes(container_ids: set[str]) -> list[int]:
    """Host pids whose cgroup names one of the containers (cgroupfs: /docker/<id>; systemd: docker-<id>.scope)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        if any(cid in cgroup for cid in container_ids):
            found.append(int(entry.name))
    return found


def test_down_leaves_nothing(lab):
    """`docker compose down` leaves no container, network or host process of the project."""
    lab.remember_containers()
    assert lab.container_ids, "no container was ever started"
    # the scan below must see the running workers' processes first, or "none left" would read nothing
    running = _container_processes(lab.container_ids)
    assert running, f"no host process found in the cgroups of the running containers {sorted(lab.container_ids)}"
    lab.compose("down", timeout=300)
    assert lab.project_leftovers() == {"containers": [], "networks": []}
    # No process of any of the project's containers is left on the host.
    stray = _container_processes(lab.container_ids)
    assert stray == [], f"processes of the project's containers still running: {stray}"
