"""A short soak (bench/soak.py, 50 iterations): the strategies that claim to be clean stay flat, the baseline does not.

The full soak (1000 iterations, minutes) is not part of the suite; its figures are in
docs/reliability.md. Bounds are slopes per 100 iterations, overridable from the environment:
LAB_TEST_SOAK_ITERATIONS, LAB_TEST_SOAK_MAX_PROCS, _MAX_FDS, _MAX_THREADS, _MAX_RSS_MB.

A second, short soak runs the baseline, `process` under fork with Celery's SIGTERM handler, which
leaks a task process per timeout (each runs its calibrated query to the end): its process slope
must exceed the bound the clean ones are held to, so a probe that reads 0 cannot pass them.
"""

from __future__ import annotations

import json
import subprocess

import pytest

import labtest
import process_guard
import reltest

CLEAN = ("process+cleanup", "interrupt", "deadline")
LEAKING = "process"  # a run of its own, after the clean ones: its leftovers must not load them


# The positive control needs only a few timeouts: each leaves one more process running its query.
LEAK_ITERATIONS = 10


def _soak(tmp_path, strategies: tuple[str, ...], iterations: int) -> tuple[dict, str]:
    """One bench/soak.py run under fork (the start method under which the baseline leaks): its results by strategy."""
    out = tmp_path / f"soak-{'-'.join(strategies)}.json"
    run = reltest.run_id("rel-soak")
    try:
        done = subprocess.run(
            [reltest.PYTHON, str(reltest.REPO / "bench" / "soak.py"), "--iterations", str(iterations),
             "--strategies", ",".join(strategies), "--start-method", "fork", "--json", str(out)],
            env=reltest.env(run), cwd=reltest.REPO, capture_output=True, text=True, timeout=600,
        )
    finally:
        # the baseline's task processes, orphaned when its child exited, each still running its query:
        # started by this test (they carry its marker), stopped by pid
        process_guard.kill(reltest.leftovers(run, grace=0))
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == set(strategies), results.keys()
    for strategy, r in results.items():
        assert r["iterations"] == iterations, (strategy, r["iterations"])  # one sample per iteration asked for
    return results, done.stdout


@pytest.mark.slow
def test_short_soak_is_flat_for_the_clean_strategies(tmp_path):
    """The clean strategies' slopes stay under their bounds; the leaking baseline's process slope exceeds its bound."""
    iterations = int(labtest.threshold("LAB_TEST_SOAK_ITERATIONS", 50))
    results, stdout = _soak(tmp_path, CLEAN, iterations)
    leaking, _ = _soak(tmp_path, (LEAKING,), LEAK_ITERATIONS)
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
    # the positive control: the same probe, bounds and slope must see the baseline's leak
    base = leaking[LEAKING]["processes"]
    if not (base["slope_per_100"] > bounds["processes"] and base["max"] > 1):
        problems.append(f"{LEAKING} (the leaking baseline): processes {base}: the soak does not see a leak "
                        f"(slope must exceed {bounds['processes']} per 100 iterations)")
    assert not problems, "\n".join(problems) + "\n\n" + stdout
