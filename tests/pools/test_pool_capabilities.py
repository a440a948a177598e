"""The pool-capability table (scripts/lab pools): every cell against the published table and its own records.

docs/pools.md publishes what Celery 5.7 did with a long DuckDB call, pool by pool, on either build, in a
run of its own; a fresh run must give every cell the same verdict, and each verdict must be what the
cell's records show by the clock: stopped near the deadline, ran to its end, killed near the deadline or
only once the query was over, one pool process per task or not. gevent has no cp314t wheel: on the
free-threaded build its cells must say so instead.
"""

from __future__ import annotations

import re

import pytest

import labtest
from app.kernel import axes
from labctl import pools

DOCS = labtest.REPO / "docs" / "pools.md"
BUILD_HEADINGS = {"gil": "### GIL build", "nogil": "### Free-threaded build"}
EXCEPTION = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exceeded))\b")
# SIGALRM (signals) or SIGUSR1 (soft-limit) landing in Python code instead of inside DuckDB (before the query
# started, on a busy machine) shows as the Python exception instead of the RuntimeError docs/pools.md shows
IN_PYTHON = {"signals": "TimeoutError", "soft-limit": "SoftTimeLimitExceeded"}
# a query calibrated to run N s takes N s within this factor either way (another process may take a core)
FACTOR = labtest.threshold("LAB_TEST_CALIBRATION_FACTOR", 3.0)
CELLS = [(m, p) for m in pools.MECHANISM_NAMES for p in axes.POOL_NAMES]


def published() -> dict[tuple[str, str, str], str]:
    """docs/pools.md's capability tables: (build, pool, mechanism) -> the cell's text."""
    text = DOCS.read_text()
    by_title = {m.title: m.name for m in pools.MECHANISMS}
    out = {}
    for build, heading in BUILD_HEADINGS.items():
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        header, *rows = [line.strip().strip("|").strip().split(" | ") for line in section.splitlines()
                         if line.startswith("| ")]
        assert header[0] == "mechanism" and rows, section
        for row in rows:
            for pool, cell_text in zip(header[1:], row[1:], strict=True):
                out[(build, pool, by_title[row[0]])] = cell_text
    return out


PUBLISHED = published()


def cell(data: dict, build: str, pool: str, mechanism: str) -> dict:
    found = [c for c in data["cells"] if (c["build"], c["pool"], c["mechanism"]) == (build, pool, mechanism)]
    assert len(found) == 1, f"{build} {pool} {mechanism}: {len(found)} cells"
    return found[0]


def ran_to_end(data: dict, build: str) -> list[float]:
    """How long each query of `build` that ran to its end took (outcome ok, about its calibrated length)."""
    return [r["elapsed"] for c in data["cells"] if c["build"] == build for r in c["records"]
            if r.get("outcome") == "ok" and r["elapsed"] >= r["expected_seconds"] / FACTOR]


def assert_records_show(got: dict, data: dict) -> None:
    """The cell's verdict is what its records show by the clock, read here without pools.verdict."""
    records, verdict = got["records"], got["verdict"]
    if verdict == "not run":
        assert records == [], got
        return
    if pools.BY_NAME[got["mechanism"]].max_tasks_per_child and verdict in ("works", "ignored"):
        pids = [r["pid"] for r in records]
        assert len(pids) == pools.BY_NAME[got["mechanism"]].tasks, records
        assert (len(set(pids)) == len(pids)) == (verdict == "works"), pids  # a new pool process per task
        return
    assert records, got
    r = records[0]
    killed = r["outcome"] in ("killed", "failed") and r["exception_type"] in ("TimeLimitExceeded", "WorkerLostError")
    if verdict in ("works", "late") and killed:
        # killed near the deadline, or only once the C call returned: against the queries of the same build
        # that ran to their end in this run
        full = ran_to_end(data, got["build"])
        assert full and r["seen_after"] is not None, (r, full)
        assert (r["seen_after"] < min(full) / 2) == (verdict == "works"), (r["seen_after"], full)
    elif verdict == "works":
        # stopped near the deadline, long before the query would have ended by the worker's own calibration
        assert r["outcome"] == "timeout" and r["overshoot"] >= 0, r
        assert r["elapsed"] < r["expected_seconds"] / FACTOR, (r["elapsed"], r["expected_seconds"])
    elif verdict == "ignored":
        assert r["outcome"] == "ok" and r["elapsed"] >= r["expected_seconds"] / FACTOR, (r["elapsed"], r)
    else:
        assert verdict == "error" and r["outcome"] in ("error", "failed"), r


def assert_as_published(got: dict, want_text: str, data: dict) -> None:
    """The run's cell has the published verdict and exception, and its records show that verdict."""
    want = want_text.split(":", 1)[0]
    assert got["verdict"] == want, f"docs/pools.md: {want_text!r}; the run measured {got['verdict']}: {got['detail']}"
    named = EXCEPTION.search(want_text)
    if named:
        allowed = {named.group(1)} | ({IN_PYTHON[got["mechanism"]]} if want == "works" and got["mechanism"] in IN_PYTHON
                                      else set())
        assert any(name in got["detail"] for name in allowed), f"docs/pools.md says {want_text!r}: {got['detail']}"
    assert_records_show(got, data)


def test_the_published_table_covers_every_mechanism_and_pool():
    """docs/pools.md has a cell for every build, every mechanism of pools.py and every pool of app/kernel/axes.py."""
    want = {(b, p, m) for b in axes.BUILDS for p in axes.POOL_NAMES for m in pools.MECHANISM_NAMES}
    assert set(PUBLISHED) == want, sorted(set(PUBLISHED) ^ want)
    verdicts = {text.split(":", 1)[0] for text in PUBLISHED.values()}
    assert verdicts <= {"works", "ignored", "late", "error", "not run"}, verdicts


@pytest.mark.slow
def test_the_run_says_which_interpreter_ran(pools_run):
    """The GIL cells ran on the 3.14 GIL build when it is there; else the run says this machine's python3 stood in."""
    python = pools_run["interpreters"]["gil"]
    if "gil" in pools_run["built"]:
        assert "3.14" in python and "gil" not in pools_run["missing"], (python, pools_run["missing"])
    else:
        assert "3.14" not in python, python
        assert "this machine's python3 stands in" in pools_run["missing"]["gil"], pools_run["missing"]
        assert "this machine's python3 stands in" in pools_run["md"], pools_run["md"]


@pytest.mark.slow
@pytest.mark.parametrize("mechanism,pool", CELLS)
def test_gil_cell_is_what_celery_does(pools_run, mechanism, pool):
    """On the GIL build (or this machine's python3 standing in) each cell is docs/pools.md's and its records show it."""
    got = cell(pools_run, "gil", pool, mechanism)
    assert_as_published(got, PUBLISHED[("gil", pool, mechanism)], pools_run)
    assert got["command"] == f"scripts/lab pools --builds gil --pools {pool} --mechanisms {mechanism}"


@pytest.mark.slow
@pytest.mark.built
@pytest.mark.parametrize("mechanism,pool", CELLS)
def test_free_threaded_cell_is_what_celery_does(pools_run, mechanism, pool):
    """On 3.14t each cell is docs/pools.md's, and its records show it; gevent has no cp314t wheel and says so."""
    labtest.need("nogil" in pools_run["interpreters"], "no free-threaded build: run scripts/lab setup")
    got = cell(pools_run, "nogil", pool, mechanism)
    if pool == "gevent" and got["verdict"] == "not run":
        assert "gevent" in got["detail"], got
        return
    want_text = PUBLISHED[("nogil", pool, mechanism)]
    if want_text.startswith("not run"):  # the published run had no gevent there: then as on the GIL build
        want_text = PUBLISHED[("gil", pool, mechanism)]
    assert_as_published(got, want_text, pools_run)


@pytest.mark.slow
def test_the_table_says_where_celerys_docs_disagree(pools_run):
    """gevent's soft limit (documented, ignored) and hard limit (documented, late) are listed as disagreements."""
    assert "Where Celery's docs and the run disagree" in pools_run["md"]
    assert "gevent, soft time limit" in pools_run["md"] and "gevent, hard time limit" in pools_run["md"]
    assert "prefork, hard time limit" not in pools_run["md"]


@pytest.mark.slow
def test_the_run_leaves_nothing_behind(pools_run):
    """Every worker, sender and task process of the run is gone when it returns (threads and gevent pools too)."""
    from labctl import procs

    assert procs.marked("test-pools") == []
    measured = [c for c in pools_run["cells"] if c["verdict"] != "not run"]
    assert len(measured) >= len(pools.MECHANISMS) * 3, pools_run["stdout"][-2000:]  # solo, threads, prefork at least


@pytest.mark.parametrize("args,says", [
    (["--pools", "eventlet"], "POOLS='eventlet': expected all, or a comma-separated list of solo, threads"),
    (["--mechanisms", ""], "MECHANISMS"),
    (["--timeout", "0"], "--timeout 0: expected seconds from 0.05 to 5"),
    (["--query-seconds", "2"], "--query-seconds 2: expected at least"),
    (["--bogus"], "unknown option --bogus"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, says):
    """A bad flag is one line naming it and what is accepted, exit 2, and no run folder."""
    labtest.assert_lab_rejects(tmp_path, "pools", args, says)
