"""`scripts/lab quick`: the article's gil and gil-clean workers on this machine's own python3."""

from __future__ import annotations

import platform

import pytest

import labtest


@pytest.mark.slow
def test_quick_from_an_empty_cache_builds_nothing(tmp_path):
    """From an empty cache, quick makes only a venv, runs both workers and states the interpreter first."""
    cache = tmp_path / "cache"
    env = labtest.base_env(tmp_path, LAB_CACHE=str(cache))

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not (cache / "python").exists(), "quick must not build an interpreter"
    assert sorted(p.name.split("-")[0] for p in (cache / "venv").iterdir()) == ["host"]
    run_dir = labtest.only_run(tmp_path / "results")
    labtest.assert_article_behaviour(run_dir, ["gil", "gil-clean"], iterations=2)
    summary = (run_dir / "summary.txt").read_text().splitlines()
    assert summary[0].startswith(f"interpreter: CPython {platform.python_version()}, gil build"), summary[0]
    assert "start method" in summary[0]
    assert any(line.startswith("nogil skipped") and "scripts/lab setup" in line for line in summary), summary


def test_quick_on_the_embedded_broker(tmp_path):
    """With LAB_BROKER=filesystem quick needs no server and says so in the summary."""
    env = labtest.base_env(tmp_path, LAB_BROKER="filesystem")

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    labtest.assert_article_behaviour(run_dir, ["gil", "gil-clean"], iterations=2)
    assert "broker: embedded (kombu filesystem transport, no server)" in (run_dir / "summary.txt").read_text()
    assert {r["broker"] for r in labtest.records(run_dir)} == {"filesystem"}


def test_the_run_output_shows_the_article_line(tmp_path):
    """Each producer progress line carries the article's children/zombies counts and the settled ones, as recorded."""
    env = labtest.base_env(tmp_path, LAB_BROKER="filesystem")

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    recs = {(r["queue"], r["iteration"]): r for r in labtest.records(labtest.only_run(tmp_path / "results"))}
    shown = {(q, int(i)): (o, *map(int, counts)) for q, i, o, *counts in labtest.PROGRESS_LINE.findall(done.stdout)}
    assert set(shown) == set(recs), done.stdout
    for key, r in recs.items():
        expected = (r["outcome"], r["immediate"]["children"], r["immediate"]["zombies"],
                    r["settled"]["children"], r["settled"]["zombies"])
        assert shown[key] == expected, f"{key}: shown {shown[key]}, recorded {expected}"


def test_quick_under_fork_shows_children_still_running(tmp_path):
    """Under fork the gil worker's timed-out children keep running and pile up; the summary says so."""
    env = labtest.base_env(tmp_path, START_METHOD="fork", TARGET_QUEUES="gil", ITERATIONS="3")

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    recs = labtest.records(run_dir)
    assert [len(r["leaked_task_pids"]) for r in recs] == [1, 2, 3], [r["settled"] for r in recs]
    assert sum(r["cpu_after_deadline"] for r in recs) > 0.1
    text = (run_dir / "summary.txt").read_text()
    assert "gil: task processes pile up: 1 left after iteration 1, 3 after iteration 3" in text, text
    assert "kept running the query" in text
