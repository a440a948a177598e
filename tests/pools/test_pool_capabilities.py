"""The pool-capability table (scripts/lab pools): every cell asserted against what a real run measured.

EXPECTED is what Celery 5.7 does with a long DuckDB call, pool by pool, on either build; a cell the
run measured differently fails with the two side by side. gevent cells need gevent, which has no
cp314t wheel: on the free-threaded build they must say so instead.
"""

from __future__ import annotations

import pytest

import labtest
from labctl import pools

# mechanism -> pool -> (verdict, a word the cell's detail holds)
EXPECTED = {
    "soft-limit": {"solo": ("ignored", "ran to its end"), "threads": ("ignored", "ran to its end"),
                   "prefork": ("works", ""), "gevent": ("ignored", "ran to its end")},
    "hard-limit": {"solo": ("ignored", "ran to its end"), "threads": ("ignored", "ran to its end"),
                   "prefork": ("works", "TimeLimitExceeded"), "gevent": ("late", "once the C call returned")},
    "max-tasks-per-child": {"solo": ("ignored", "both tasks"), "threads": ("ignored", "both tasks"),
                            "prefork": ("works", "new pool process"), "gevent": ("ignored", "both tasks")},
    "signals": {"solo": ("works", ""), "threads": ("error", "main thread"),
                "prefork": ("works", ""), "gevent": ("works", "")},
    "process": {"solo": ("works", "TimeoutError"), "threads": ("works", "TimeoutError"),
                "prefork": ("error", "daemonic processes are not allowed to have children"),
                "gevent": ("works", "TimeoutError")},
    "interrupt": {"solo": ("works", "InterruptException"), "threads": ("works", "InterruptException"),
                  "prefork": ("works", "InterruptException"), "gevent": ("ignored", "ran to its end")},
    "deadline": {"solo": ("works", "InterruptException"), "threads": ("works", "InterruptException"),
                 "prefork": ("works", "InterruptException"), "gevent": ("works", "InterruptException")},
}
CELLS = [(m, p) for m in pools.MECHANISM_NAMES for p in ("solo", "threads", "prefork", "gevent")]


def cell(data: dict, build: str, pool: str, mechanism: str) -> dict:
    found = [c for c in data["cells"] if (c["build"], c["pool"], c["mechanism"]) == (build, pool, mechanism)]
    assert len(found) == 1, f"{build} {pool} {mechanism}: {len(found)} cells"
    return found[0]


def test_the_expectations_cover_every_mechanism_and_pool():
    """EXPECTED has a cell for every mechanism pools.py declares and every pool app/axes.py declares."""
    from app import axes

    assert set(EXPECTED) == set(pools.MECHANISM_NAMES)
    assert all(set(row) == set(axes.POOL_NAMES) for row in EXPECTED.values())


@pytest.mark.slow
@pytest.mark.parametrize("mechanism,pool", CELLS)
def test_gil_cell_is_what_celery_does(pools_run, mechanism, pool):
    """On the GIL build (or this machine's python3 standing in) each cell is the expected verdict."""
    got = cell(pools_run, "gil", pool, mechanism)
    want, word = EXPECTED[mechanism][pool]
    assert (got["verdict"], word in got["detail"]) == (want, True), \
        f"expected {want} ({word!r}), measured {got['verdict']}: {got['detail']}"
    assert got["command"] == f"scripts/lab pools --builds gil --pools {pool} --mechanisms {mechanism}"


@pytest.mark.slow
@pytest.mark.built
@pytest.mark.parametrize("mechanism,pool", CELLS)
def test_free_threaded_cell_is_what_celery_does(pools_run, mechanism, pool):
    """On 3.14t each cell is the GIL build's verdict, but gevent's, which has no cp314t wheel and says so."""
    labtest.need("nogil" in pools_run["interpreters"], "no free-threaded build: run scripts/lab setup")
    got = cell(pools_run, "nogil", pool, mechanism)
    if pool == "gevent" and got["verdict"] == "not run":
        assert "gevent" in got["detail"], got
        return
    want, word = EXPECTED[mechanism][pool]
    assert (got["verdict"], word in got["detail"]) == (want, True), \
        f"expected {want} ({word!r}), measured {got['verdict']}: {got['detail']}"


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
    done = labtest.lab("pools", *args, env=labtest.base_env(tmp_path), timeout=60)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results").exists()
