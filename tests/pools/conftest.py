"""One `scripts/lab pools` run per test session, on every build this machine has, shared by tests/pools."""

from __future__ import annotations

import json

import pytest

import labtest
from labctl import paths, rabbit


def builds() -> list[str]:
    """The builds to measure: both 3.14 builds when they are there; else the GIL cells on this machine's python3."""
    have = [b for b in ("gil", "nogil") if (paths.venv_dir(paths.DEFAULT_PYTHON_VERSION, b) / "bin" / "python").exists()]
    return have or ["gil"]


@pytest.fixture(scope="session")
def pools_run(request, tmp_path_factory):
    """The capability run's pools.json and its output."""
    tmp = tmp_path_factory.mktemp("pools")
    env = labtest.base_env(tmp, RUN_ID="test-pools")
    if rabbit.available():
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq").url
    else:
        env["LAB_BROKER"] = "filesystem"
    done = labtest.lab("pools", "--builds", ",".join(builds()), env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp / "results" / "test-pools" / "pools.json").read_text())
    data["stdout"] = done.stdout
    data["md"] = (tmp / "results" / "test-pools" / "pools.md").read_text()
    return data
