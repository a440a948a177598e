"""pebble's ProcessPool and the article's clean-up (app/cleanup.py reap_tasks) do not mix.

reap_tasks SIGTERMs every live child of the worker, and pebble's kept pool worker is one: once it is
killed while idle, the pool is broken for good. Real pebble, real DuckDB, in a process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import labtest

CODE = """
import json, os, psutil
from app import strategies
from app.cleanup import reap_tasks
first = strategies.run("pebble-pool", 1000, 5.0)
workers = [p.pid for p in psutil.Process().children()]
reaped = reap_tasks(grace=1.0)
gone = [pid for pid in workers if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"]
after = [strategies.run("pebble-pool", 1000, 5.0) for _ in range(2)]
strategies.PEBBLE_POOL.close()
print(json.dumps({"first": first.outcome, "workers": workers, "gone": gone, "terminated": reaped.terminated,
                  "after": [[o.outcome, o.exception_type, o.exception_message] for o in after],
                  "left": [p.pid for p in psutil.Process().children(recursive=True)]}))
"""


BROKEN = {("concurrent.futures.process.BrokenProcessPool", "All workers expired"),
          ("RuntimeError", "Unexpected error within the Pool")}


def test_reaping_the_workers_children_breaks_pebbles_pool():
    """After reap_tasks kills pebble's idle pool worker, every later pebble-pool call fails: the pool is broken for good."""
    done = subprocess.run([sys.executable, "-c", CODE], cwd=labtest.REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["first"] == "ok", got
    # the process table says the pool had one worker, and that reap_tasks ended it
    assert len(got["workers"]) == 1 and got["gone"] == got["workers"] and got["terminated"] == 1, got
    # the next call fails one way or the other (whether the pool's manager thread has seen the death yet),
    # and every call after it with the pool's RuntimeError
    assert len(got["after"]) == 2, got
    assert all(outcome == "error" and (kind, says) in BROKEN for outcome, kind, says in got["after"]), got
    assert got["after"][-1][1:] == ["RuntimeError", "Unexpected error within the Pool"], got
    assert got["left"] == [], got
