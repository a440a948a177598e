"""A short soak (bench/soak.py, 50 iterations): the strategies that claim to be clean stay flat.

The full soak (1000 iterations, minutes) is not part of the suite; its figures are in
docs/reliability.md. Bounds are slopes per 100 iterations, overridable from the environment:
LAB_TEST_SOAK_ITERATIONS, LAB_TEST_SOAK_MAX_PROCS, _MAX_FDS, _MAX_THREADS, _MAX_RSS_MB.
"""

from __future__ import annotations

import json
import subprocess

import pytest

import labtest
import reltest

CLEAN = ("process+cleanup", "interrupt", "deadline")


@pytest.mark.slow
def test_short_soak_is_flat_for_the_clean_strategies(tmp_path):
    iterations = int(labtest.threshold("LAB_TEST_SOAK_ITERATIONS", 50))
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [reltest.PYTHON, str(reltest.REPO / "bench" / "soak.py"), "--iterations", str(iterations),
         "--strategies", ",".join(CLEAN), "--json", str(out)],
        env=reltest.env(reltest.run_id("rel-soak")), cwd=reltest.REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == set(CLEAN)
    bounds = {
        "processes": labtest.threshold("LAB_TEST_SOAK_MAX_PROCS", 0.5),
        "fds": labtest.threshold("LAB_TEST_SOAK_MAX_FDS", 1.0),
        "threads": labtest.threshold("LAB_TEST_SOAK_MAX_THREADS", 0.5),
        "rss_mb": labtest.threshold("LAB_TEST_SOAK_MAX_RSS_MB", 10.0),
    }
    problems = []
    for strategy, r in results.items():
        timeouts = r["outcomes"].get("timeout", 0)
        if timeouts < 0.9 * iterations:
            problems.append(f"{strategy}: only {timeouts}/{iterations} calls timed out: {r['outcomes']}")
        for measure, bound in bounds.items():
            slope = r[measure]["slope_per_100"]
            if slope > bound:
                problems.append(f"{strategy}: {measure} grows {slope:+.2f} per 100 iterations (bound {bound})")
        if r["processes"]["max"] > 1:
            problems.append(f"{strategy}: up to {r['processes']['max']} processes left after an iteration")
        if r["fds"]["last"] - r["fds"]["first"] > 2:
            problems.append(f"{strategy}: open fds went from {r['fds']['first']} to {r['fds']['last']}")
    assert not problems, "\n".join(problems) + "\n\n" + done.stdout
