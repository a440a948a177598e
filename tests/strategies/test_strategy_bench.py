"""bench/strategies.py end to end, with few timeouts: the table, the JSON, the verdicts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import labtest


def _bench(python, *args, tmp_path, runner=None):
    out = tmp_path / "bench.json"
    cmd = [str(runner)] if runner else [str(python), str(labtest.REPO / "bench" / "strategies.py")]
    done = subprocess.run([*cmd, *args, f"--json={out}"], cwd=labtest.REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_bench_on_this_interpreter(tmp_path):
    stdout, data = _bench(
        # --query-factor 30: the timed-out query would run ~9 s, so leftovers are still running at the end
        sys.executable, "--timeouts=3", "--ok-calls=3", "--timeout=0.3", "--query-factor=30",
        "--strategies=process,interrupt,deadline",
        "--start-methods=fork", tmp_path=tmp_path,
    )
    (build,) = data["builds"].values()
    v = build["variants"]
    assert set(v) == {"process@fork", "interrupt", "deadline"}
    assert build["sigterm"] == "celery"
    # the article, outside Celery but with Celery's SIGTERM handler: the timed-out task
    # processes keep running the query and burn CPU nobody waits for
    assert v["process@fork"]["left"]["running"] >= 1, v["process@fork"]["left"]
    assert v["process@fork"]["cpu_after_s"] > 0.05
    for name in ("interrupt", "deadline"):
        assert v[name]["outcomes"] == {"timeout": 3}, v[name]
        assert v[name]["left"]["tasks"] == 0 and v[name]["cpu_after_s"] == 0.0, v[name]
        assert v[name]["overhead"]["overhead_ms"] < v["process@fork"]["overhead"]["overhead_ms"]
    assert "overshoot p99" in stdout and "process@fork" in stdout
    assert "strategies meeting all four targets" in stdout
    assert "(1.00x)" in stdout  # the baseline's own ratios


@pytest.mark.slow
@pytest.mark.built
def test_bench_run_uses_both_builds(tmp_path):
    labtest.built_python("gil"), labtest.built_python("nogil")
    _, data = _bench(None, "--timeouts=2", "--ok-calls=2", "--timeout=0.3", "--strategies=interrupt,deadline",
                     tmp_path=tmp_path, runner=labtest.REPO / "bench" / "run")
    assert set(data["builds"]) == {"gil", "nogil"}
    assert data["builds"]["nogil"]["runtime"]["gil_enabled"] is False
    assert data["builds"]["gil"]["runtime"]["python"] == "3.14.7"
    for build in data["builds"].values():
        assert build["default_start_method"] == "forkserver"
        assert set(build["variants"]) == {"interrupt", "deadline"}, build["variants"]
        for v in build["variants"].values():
            assert v["outcomes"] == {"timeout": 2} and v["left"]["tasks"] == 0, v
