"""One `scripts/lab pools` run per test session, on every build this machine has, shared by tests/pools."""

from __future__ import annotations

import json

import pytest

import labtest
from labctl import paths, pools, rabbit


def built() -> list[str]:
    """The 3.14 builds `scripts/lab setup` made on this machine."""
    return [b for b in ("gil", "nogil") if (paths.venv_dir(paths.DEFAULT_PYTHON_VERSION, b) / "bin" / "python").exists()]


def builds() -> list[str]:
    """The builds to measure: both 3.14 builds when they are there; else the GIL cells, which the run says it
    measures on this machine's python3 (test_the_run_says_which_interpreter_ran)."""
    return built() or ["gil"]


@pytest.fixture(scope="session")
def pools_run(request, tmp_path_factory):
    """The capability run's pools.json and its output."""
    tmp = tmp_path_factory.mktemp("pools")
    env = labtest.base_env(tmp, RUN_ID="test-pools")
    args = ["--builds", ",".join(builds())]
    if rabbit.available():
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq").url
        # On RabbitMQ a hard limit kills within half a second, so the shortest query pools.py accepts
        # (--timeout + KILL_GAP) still tells works from late; on the embedded broker billiard looks at the
        # limits once a second (docs/pools.md), which the default 6 s query leaves room for.
        args += ["--query-seconds", f"{pools.TIMEOUT + pools.KILL_GAP:g}"]
    else:
        env["LAB_BROKER"] = "filesystem"
    done = labtest.lab("pools", *args, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp / "results" / "test-pools" / "pools.json").read_text())
    data["stdout"] = done.stdout
    data["md"] = (tmp / "results" / "test-pools" / "pools.md").read_text()
    data["built"] = [b for b in builds() if b in built()]
    return data
