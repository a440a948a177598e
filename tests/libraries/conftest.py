"""One `scripts/lab libraries` run per test session, on every build this machine has, shared by tests/libraries."""

from __future__ import annotations

import json

import pytest

import labtest
from labctl import libraries, paths, rabbit


def built() -> list[str]:
    """The 3.14 builds `scripts/lab setup` made on this machine."""
    return [b for b in ("gil", "nogil") if (paths.venv_dir(paths.DEFAULT_PYTHON_VERSION, b) / "bin" / "python").exists()]


@pytest.fixture(scope="session")
def libraries_run(request, tmp_path_factory):
    """The run's libraries.json, on the 3.14 builds (the host rows are the newcomer's: tests/libraries
    runs them where no build is), with the published tables' settings."""
    tmp = tmp_path_factory.mktemp("libraries")
    env = labtest.base_env(tmp, RUN_ID="test-libraries")
    builds = built() or ["host"]
    args = ["--builds", ",".join(builds), "--iterations", "1"]
    if rabbit.available():
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq").url
    else:
        env["LAB_BROKER"] = "filesystem"
    done = labtest.lab("libraries", *args, env=env, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp / "results" / "test-libraries" / "libraries.json").read_text())
    data["md"] = (tmp / "results" / "test-libraries" / "libraries.md").read_text()
    data["builds"] = builds
    assert data["timeout"] == libraries.TIMEOUT and data["query_seconds"] == libraries.QUERY_SECONDS
    return data
