"""`scripts/lab quick`: the article's gil and gil-clean workers on this machine's own python3.

One quick run, as the README's first command runs it, from an empty cache and on the broker this
machine offers (a private RabbitMQ node where rabbitmq-server is installed, else the embedded one),
serves every test here. Leftovers piling up under fork: tests/native/test_leftovers.py.
"""

from __future__ import annotations

import os
import platform
import re

import pytest

import labtest
from labctl import rabbit

# rabbitmq: where it is installed the README's quick starts a private node, so CI's full pass runs these too
pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick")
    cache = tmp / "cache"
    done = labtest.lab("quick", env=labtest.base_env(tmp, LAB_CACHE=str(cache)))
    assert done.returncode == 0, done.stdout + done.stderr
    return cache, labtest.only_run(tmp / "results"), done


def test_quick_from_an_empty_cache_builds_nothing(quick):
    """From an empty cache, quick makes only a venv, runs both workers and states the interpreter first."""
    cache, run_dir, _ = quick
    assert not (cache / "python").exists(), "quick must not build an interpreter"
    assert sorted(p.name.split("-")[0] for p in (cache / "venv").iterdir()) == ["host"]
    labtest.assert_article_behaviour(run_dir, ["gil", "gil-clean"], iterations=2)
    summary = (run_dir / "summary.txt").read_text().splitlines()
    assert summary[0].startswith(f"interpreter: CPython {platform.python_version()}, gil build"), summary[0]
    assert "start method" in summary[0]
    assert any(line.startswith("nogil skipped") and "scripts/lab setup" in line for line in summary), summary


def test_quick_says_which_broker_it_used(quick):
    """Quick uses a private RabbitMQ node where one can start, else the embedded broker, and the summary says which."""
    _, run_dir, _ = quick
    text = (run_dir / "summary.txt").read_text()
    if rabbit.available() and os.environ.get("LAB_BROKER", "auto") != "filesystem":
        assert re.search(r"^broker: private RabbitMQ node \(pid \d+\)$", text, re.M), text
        assert {r["broker"] for r in labtest.records(run_dir)} == {"rabbitmq"}
    else:
        assert "broker: embedded (kombu filesystem transport, no server)" in text, text
        assert {r["broker"] for r in labtest.records(run_dir)} == {"filesystem"}


def test_the_run_output_shows_the_article_line(quick):
    """Each producer progress line carries the article's children/zombies counts and the settled ones, as recorded."""
    _, run_dir, done = quick
    recs = {(r["queue"], r["iteration"]): r for r in labtest.records(run_dir)}
    shown = {(q, int(i)): (o, *map(int, counts)) for q, i, o, *counts in labtest.PROGRESS_LINE.findall(done.stdout)}
    assert len(recs) == 4 and set(shown) == set(recs), done.stdout
    for key, r in recs.items():
        expected = (r["outcome"], r["immediate"]["children"], r["immediate"]["zombies"],
                    r["settled"]["children"], r["settled"]["zombies"])
        assert shown[key] == expected, f"{key}: shown {shown[key]}, recorded {expected}"


# The README's expected output, read as shapes: numbers, pids and how a worker ended may differ.
README_LINES = re.compile(r"^(\[lab\] worker .*|\[lab\] workers ready.*|\[producer\] gil(-clean)?: \d+/\d+ iter=.*"
                          r"|gil-clean: cleanup terminated .*)$")


def _shape(line: str) -> str:
    line = re.sub(r": (stopped|killed \(still running \d+s after SIGTERM\))$", ": <ended>", line)
    return re.sub(r"\d+", "<n>", line)


def test_the_output_has_the_lines_the_readme_shows(quick):
    """The README's expected lines (workers, the article's counts, the clean-up, the workers stopped) appear, in shape."""
    _, _, done = quick
    readme = (labtest.REPO / "README.md").read_text().split("$ scripts/lab quick\n", 1)[1].split("```", 1)[0]
    wanted = {_shape(line) for line in readme.splitlines() if README_LINES.match(line)}
    got = {_shape(line) for line in done.stdout.splitlines()}
    assert len(wanted) >= 8, wanted  # both workers started and stopped, progress lines, the clean-up line
    assert wanted <= got, sorted(wanted - got)
    assert re.search(r"^gil-clean: cleanup terminated \d+, killed \d+, remaining 0$", done.stdout, re.M), done.stdout



def test_the_summary_adds_up_the_workers_clean_up_lines(quick):
    """The summary's clean-up line is the sum of the gil-clean worker's own log lines, and its table the records' counts."""
    _, run_dir, done = quick
    logged = [tuple(map(int, m)) for m in labtest.CLEANUP_LINE.findall(labtest.worker_log(run_dir, "gil-clean"))]
    assert len(logged) == 2, logged
    terminated, killed = sum(t for t, _, _ in logged), sum(k for _, k, _ in logged)
    remaining = max(r for *_, r in logged)
    assert f"gil-clean: cleanup terminated {terminated}, killed {killed}, remaining {remaining}" in done.stdout, \
        (logged, done.stdout)
    row = next(line.split() for line in (run_dir / "summary.txt").read_text().splitlines() if line.startswith("gil "))
    recs = sorted((r for r in labtest.records(run_dir) if r["queue"] == "gil"), key=lambda r: r["iteration"])
    assert len(recs) == 2, recs
    # columns: ... iters, timeouts, ok/err/miss, children/zombies now, children/zombies settled, leaked
    iters, timeouts, _, now, settled, leaked = row[8:14]
    last = recs[-1]
    assert (int(iters), int(timeouts)) == (2, sum(r["outcome"] == "timeout" for r in recs)), row
    assert now == f"{last['immediate']['children']}/{last['immediate']['zombies']}", (row, last["immediate"])
    assert settled == f"{last['settled']['children']}/{last['settled']['zombies']}", (row, last["settled"])
    assert int(leaked) == len(last["leaked_task_pids"]), (row, last["leaked_task_pids"])
