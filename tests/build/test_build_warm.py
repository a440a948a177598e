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

from build_helpers import REPO, SCRIPT, base_env, build, run_build

pytestmark = pytest.mark.built  # needs the interpreters from `scripts/lab setup`


def test_warm_run_is_a_fast_no_op(built, cache_state):
    """With both interpreters and venvs cached a run exits 0 in under 10 s and changes nothing."""
    start = time.monotonic()
    proc = run_build(timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 10, f"warm run took {elapsed:.1f}s"
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
    for flavour, info in doc.items():
        assert info["built"] is True and info["python"] == built[flavour]["python"]
        assert info["venv_ready"] is False
        assert info["venv"] != built[flavour]["venv"]
        assert Path(info["venv"]).parent == Path(built[flavour]["venv"]).parent


def test_lab_setup_warm_is_fast(built, cache_state):
    """`scripts/lab setup` on a warm cache finishes in under 10 s without changing the cache."""
    start = time.monotonic()
    proc = subprocess.run([str(REPO / "scripts" / "lab"), "setup"], env=base_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 10, f"scripts/lab setup took {elapsed:.1f}s warm"
    assert "nothing to do" in proc.stdout
    before, after = cache_state()
    assert before == after
