"""A second run with everything cached does no work, says what it found, and is fast."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import labtest
from build_helpers import REPO, SCRIPT, base_env, build, run_build

pytestmark = pytest.mark.built  # needs the interpreters from `scripts/lab setup`

# A warm run checks and builds nothing, so its yardstick is its own checks done on their own just before,
# on the same machine: no fixed seconds that a slower machine misses. A build takes minutes.
WARM_FACTOR = labtest.threshold("LAB_TEST_WARM_RUN_FACTOR", 5.0)


def checks_alone_seconds(built: dict, *command: str) -> float:
    """Seconds of what a warm run does (labctl.build._plan), done alone: `command --print-paths` (the same
    start-up and the cache's records) and one start of each cached interpreter and venv python."""
    start = time.monotonic()
    done = subprocess.run([*command, "--print-paths"], env=base_env(), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    pythons = [info[key] for info in built.values() for key in ("python", "venv_python")]
    assert len(pythons) == 4, pythons
    for python in pythons:
        subprocess.run([python, "-c", ""], env=build.child_env(base_env()), capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def test_warm_run_is_a_fast_no_op(built, cache_state):
    """With both interpreters and venvs cached a run exits 0 about as fast as its checks alone and changes nothing."""
    alone = checks_alone_seconds(built, sys.executable, str(SCRIPT))
    start = time.monotonic()
    proc = run_build(timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < WARM_FACTOR * alone, f"warm run took {elapsed:.2f}s, its checks alone {alone:.2f}s"
    assert "nothing to do" in proc.stdout
    for flavour in ("gil", "nogil"):
        assert f"{flavour}: found {built[flavour]['python']}" in proc.stdout
    assert proc.stderr == ""
    before, after = cache_state()
    assert before == after


def test_warm_run_needs_no_source_or_wheelhouse(built, cache_state):
    """A warm run without PYTHON_SOURCE or WHEELHOUSE neither downloads nor builds anything."""
    env = base_env()
    env.pop("PYTHON_SOURCE", None)
    env.pop("WHEELHOUSE", None)
    proc = run_build("--flavour", "nogil", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stdout and "download" not in proc.stdout
    before, after = cache_state()
    assert before == after


def test_main_in_process_returns_0_when_warm(built, cache_state):
    """labctl.build.main(argv, env), as `scripts/lab setup` calls it, returns 0 on a warm cache."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = build.main(["--flavour", "both"], base_env())
    assert rc == 0
    assert "nothing to do" in out.getvalue()
    assert build.main(["--jobs", "x"], dict(os.environ)) == 2
    before, after = cache_state()
    assert before == after
    assert SCRIPT.stat().st_mode & 0o111, "scripts/build-python must be executable"


def test_changed_requirements_mean_a_new_venv_on_the_same_interpreter(built, tmp_path):
    """With an edited requirements file the same interpreter is reused but a new, unbuilt venv is planned."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "requirements", repo / "requirements")
    # scripts/labctl reads the settings spec and the registry from app/ (standard library only)
    shutil.copytree(REPO / "app", repo / "app", ignore=shutil.ignore_patterns("__pycache__"))
    with open(repo / "requirements" / "lab.txt", "a") as fh:
        fh.write("# an edit\n")
    proc = subprocess.run([sys.executable, str(repo / "scripts" / "build-python"), "--print-paths"],
                          env=base_env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == set(built), doc
    for flavour, info in doc.items():
        assert info["built"] is True and info["python"] == built[flavour]["python"]
        assert info["venv_ready"] is False
        assert info["venv"] != built[flavour]["venv"]
        assert Path(info["venv"]).parent == Path(built[flavour]["venv"]).parent


def test_lab_setup_warm_is_fast(built, cache_state):
    """`scripts/lab setup` on a warm cache finishes about as fast as its checks alone without changing the cache."""
    lab = str(REPO / "scripts" / "lab")
    alone = checks_alone_seconds(built, lab, "setup")
    start = time.monotonic()
    proc = subprocess.run([lab, "setup"], env=base_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < WARM_FACTOR * alone, f"scripts/lab setup took {elapsed:.2f}s warm, its checks alone {alone:.2f}s"
    assert "nothing to do" in proc.stdout
    before, after = cache_state()
    assert before == after
