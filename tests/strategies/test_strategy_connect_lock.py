"""query.connect opens DuckDB connections one at a time: concurrent duckdb.connect() aborts 3.14t."""

from __future__ import annotations

import subprocess

import pytest

import labtest

# Threads that connect, query and close at once, many times over: without query.CONNECT_LOCK this
# aborted the free-threaded build ("Critical nanobind error" or SIGSEGV) in 3 of 3 runs here.
STORM = """
import sys, threading
sys.path.insert(0, {repo!r})
from app import query
errors = []
def work():
    try:
        for _ in range(25):
            con = query.connect(1)
            assert query.execute(con, 1000) != 0
            con.close()
    except BaseException as exc:
        errors.append(exc)
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print("errors", len(errors), "gil", getattr(sys, "_is_gil_enabled", lambda: True)())
"""


@pytest.mark.built
def test_threads_connecting_at_once_do_not_crash_the_free_threaded_build():
    """Four threads opening 25 connections each at once on 3.14t with the GIL off all succeed."""
    python = labtest.built_python("nogil")
    done = subprocess.run([str(python), "-c", STORM.format(repo=str(labtest.REPO))], env={"PYTHON_GIL": "0"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "errors 0 gil False" in done.stdout, done.stdout + done.stderr
