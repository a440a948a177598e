"""Helpers shared by the lab's tests: run the real scripts, find what they left running.

No mocks here: these start real brokers, workers and interpreters, and read real logs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from labctl import paths, procs  # scripts/ is on sys.path: pyproject.toml's pytest `pythonpath`

REPO = Path(__file__).resolve().parents[1]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


CI = _truthy("CI")
# The newcomer's pass of .ci/run: a fresh LAB_CACHE with no 3.14 builds, the embedded broker, no
# Docker. Tests that need more skip with their reason there, even under CI=true.
NEWCOMER = _truthy("LAB_TEST_NEWCOMER")
SHARED = Path(os.environ.get("LAB_SHARED") or REPO.parent / "shared")

# The article's log lines, exactly.
ITER_LINE = re.compile(r"iter=(\d+) outcome=(\w+) children=(\d+) zombies=(\d+)$", re.M)
# The producer's progress line: the same counts, where the run's own output shows them.
PROGRESS_LINE = re.compile(
    r"^\[producer\] (\S+): \d+/\d+ iter=(\d+) outcome=(\w+) children=(\d+) zombies=(\d+) "
    r"\(settled: children=(\d+) zombies=(\d+)\)$", re.M)
CLEANUP_LINE = re.compile(r"cleanup terminated=(\d+) killed=(\d+) remaining=(\d+)$", re.M)


def threshold(name: str, default: float) -> float:
    """A bound a test asserts, overridable from the environment (e.g. LAB_TEST_MAX_OVERSHOOT)."""
    return float(os.environ.get(name, default))


# What a newcomer's machine may lack: the only reasons a test may skip in CI's newcomer pass
# (conftest.py fails that pass on any other). The lab builds everything else itself.
MISSING = {
    "build": "no 3.14 build",
    "rabbitmq": "no RabbitMQ",
    "docker": "no Docker engine",
}
# The one reason a test may skip anywhere, CI included: pip has no wheel of an optional package for
# an interpreter, as the venv's record says (scripts/labctl/optional.py).
NO_WHEEL = "no wheel"


def need(condition: bool, reason: str, missing: str = "build") -> None:
    """Skip on a developer machine, fail under CI=true: CI must run everything (but in its newcomer pass)."""
    import pytest

    if condition:
        return
    reason = f"{MISSING[missing]}: {reason}"
    if CI and not NEWCOMER:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def need_module(module: str) -> None:
    """The optional package `module` imports here; else skip only where this venv's record says pip has no
    wheel of it for this interpreter (scripts/labctl/optional.py), and fail with why otherwise."""
    import importlib.util

    import pytest

    if importlib.util.find_spec(module) is not None:
        return
    record_file = Path(sys.prefix) / "lab-optional.json"
    if not record_file.is_file():
        pytest.fail(f"{module} is not importable and {record_file} is missing: the lab's venv was not made by the lab")
    record = json.loads(record_file.read_text())
    why = {pin.split("==")[0].lower(): reason for pin, reason in record["missing"].items()}.get(module.lower())
    if why == "no wheel for this interpreter":
        pytest.skip(f"{NO_WHEEL}: {module} for CPython {sys.version.split()[0]} ({record_file})")
    pytest.fail(f"{module} does not import in {sys.prefix}: {why or 'recorded as installed'}")


def built_python(build: str) -> Path:
    python = paths.venv_dir(paths.DEFAULT_PYTHON_VERSION, build) / "bin" / "python"
    need(python.exists(), f"no {build} interpreter at {python}: run scripts/lab setup", "build")
    return python


def lab(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `scripts/lab ARGS` and capture its output (stdout and stderr apart)."""
    return subprocess.run(
        [str(REPO / "scripts" / "lab"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def assert_lab_rejects(tmp_path: Path, command: str, args: list[str], says: str) -> None:
    """`scripts/lab COMMAND ARGS` refuses them: one line on stderr holding `says`, exit 2, and no run folder."""
    done = lab(command, *args, env=base_env(tmp_path), timeout=60)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results").exists()


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if (p / "records.jsonl").exists()) if results.exists() else []


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines() if line.strip()]


def worker_log(run_dir: Path, queue: str) -> str:
    return (run_dir / "logs" / f"worker-{queue}.log").read_text(errors="replace")


def base_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment for a lab run in a test: results under tmp_path, small defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON_GIL"))}
    env.pop("VIRTUAL_ENV", None)
    # No DUCKDB_ROWS: the workers size the query from their calibration (DUCKDB_ROWS=auto).
    env.update({"RESULTS_DIR": str(tmp_path / "results"), "ITERATIONS": "2", "DUCKDB_TIMEOUT": "0.3"})
    env.update(overrides)
    return env


def rows_for(seconds: float) -> int:
    """Rows of the lab's query that run about `seconds` on this (the test) interpreter, one thread."""
    from app.measure import calibrate

    return calibrate.cached(1).rows_for(seconds)


def quick_once(tmp_path: Path, queue: str, **overrides: str) -> tuple[Path, dict]:
    """One iteration of `scripts/lab quick` on one queue, on the embedded broker: its run folder and record."""
    env = base_env(tmp_path, LAB_BROKER="filesystem", TARGET_QUEUES=queue, ITERATIONS="1", **overrides)
    done = lab("quick", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = only_run(tmp_path / "results")
    (record,) = records(run_dir)
    return run_dir, record


def records_by_queue(run_dir: Path, queues: list[str], iterations: int) -> dict[str, list[dict]]:
    """The run's records per queue in iteration order; every queue must have iterations 1..N."""
    recs = records(run_dir)
    by_queue = {q: sorted((r for r in recs if r["queue"] == q), key=lambda r: r["iteration"]) for q in queues}
    for queue, rs in by_queue.items():
        assert [r["iteration"] for r in rs] == list(range(1, iterations + 1)), f"{queue}: {rs}"
    return by_queue


def queue_depths(rabbitmqctl_output: str) -> dict[str, int]:
    """Messages ready per queue, from `rabbitmqctl -q list_queues name messages`."""
    depths = {}
    for line in rabbitmqctl_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


def marked_processes() -> dict[int, str]:
    """Every live process carrying a lab marker, with its command name."""
    return {pid: procs.name(pid) for pid in procs.marked()}


def only_run(results: Path) -> Path:
    (run_dir,) = run_dirs(results)
    return run_dir


def assert_article_behaviour(run_dir: Path, queues: list[str], iterations: int) -> dict[str, list[dict]]:
    """What every run of the article's workers must show, whatever the interpreter or broker.

    - one record per iteration per queue, each a timeout;
    - the worker log has the article's line for every iteration;
    - gil/nogil: the timed-out call left processes behind: under fork the task itself (still
      running), under forkserver the forkserver and resource tracker (the task is reaped by the
      forkserver, often before the first snapshot);
    - gil-clean: cleanup reports remaining=0 and no task process is left after it.
    """
    recs = records(run_dir)
    by_queue: dict[str, list[dict]] = {q: sorted((r for r in recs if r["queue"] == q), key=lambda r: r["iteration"])
                                       for q in queues}
    for queue, rs in by_queue.items():
        assert [r["iteration"] for r in rs] == list(range(1, iterations + 1)), f"{queue}: records {rs}"
        assert {r["outcome"] for r in rs} == {"timeout"}, f"{queue}: expected only timeouts, got {rs}"
        lines = ITER_LINE.findall(worker_log(run_dir, queue))
        assert [int(n) for n, *_ in lines] == list(range(1, iterations + 1)), f"{queue}: log lines {lines}"
        for (n, outcome, children, zombies), r in zip(lines, rs):
            assert (outcome, int(children), int(zombies)) == (
                r["outcome"], r["immediate"]["children"], r["immediate"]["zombies"]
            ), f"{queue}: log line and record disagree for iter={n}"
    for queue in ("gil", "nogil"):
        for r in by_queue.get(queue, []):
            now = r["immediate"]["roles"]
            if r["start_method"] == "fork":
                # fork: the SIGTERMed child inherited Celery's handler and is still there
                assert now["task"] >= 1, f"{queue} iter={r['iteration']}: no task process after the timeout: {now}"
            else:
                # forkserver/spawn: the helpers stay; the task may already be reaped (a race the
                # settled snapshot resolves)
                assert now["forkserver"] + now["resource_tracker"] >= 1, f"{queue}: {now}"
                assert r["settled"]["roles"]["task"] == 0, f"{queue}: task left after settling: {r['settled']}"
    if "gil-clean" in by_queue:
        cleanups = CLEANUP_LINE.findall(worker_log(run_dir, "gil-clean"))
        assert len(cleanups) == iterations, cleanups
        assert all(remaining == "0" for *_, remaining in cleanups), cleanups
        for r in by_queue["gil-clean"]:
            assert r["cleanup"]["remaining"] == 0 and r["settled"]["roles"]["task"] == 0, r["settled"]
    return by_queue


# --- queue names: a few that spell every token of the grammar -------------------------------------

def name_tokens(queue: str) -> set[tuple[str, str]]:
    """What a queue's name spells: an article worker's name, or its build, strategy, start method, named pool
    and named workload, and every character outside [a-z0-9] (a broker may refuse one: '+' in kombu's)."""
    from app.kernel import axes
    from app.kernel.workload_axis import DEFAULT_WORKLOAD

    spec = axes.parse_queue(queue)
    assert spec is not None, queue
    chars = {("character", c) for c in queue if not c.isalnum()}
    if queue in axes.ARTICLE_WORKERS:
        return {("article worker", queue)} | chars
    parts = {("build", spec.build), ("strategy", spec.strategy), ("start method", spec.start_method),
             ("pool", spec.pool_named), ("workload", None if spec.workload == DEFAULT_WORKLOAD else spec.workload)}
    return {(kind, value) for kind, value in parts if value is not None} | chars


def covering_queues(queues=None) -> tuple[str, ...]:
    """A few names that between them spell every token of `queues`: the longest name first, then greedily the
    name spelling most tokens not yet spelled (the first such in `queues`, so the choice is stable)."""
    from app.kernel import axes

    queues = queues or axes.KNOWN_QUEUES
    chosen = [max(queues, key=len)]
    spelled = name_tokens(chosen[0])
    wanted = set().union(*map(name_tokens, queues))
    while spelled != wanted:
        best = max(queues, key=lambda q: len(name_tokens(q) - spelled))
        chosen.append(best)
        spelled |= name_tokens(best)
    return tuple(chosen)
