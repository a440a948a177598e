"""bench/pools.py end to end, --quick (N=2, 4 tasks a cell, one build): real broker, real workers, behaviour not numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import labtest
from labctl import procs

BENCH = labtest.REPO / "bench" / "pools.py"
QUICK_CELLS = {("solo", "process", 1), ("solo", "interrupt", 1), ("threads", "interrupt", 2), ("prefork", "interrupt", 2)}


# Only a guard against a hang (the bench's own limits end a stuck part first, with its reason):
# a slow machine makes the bench slow, not this test fail (LAB_TEST_POOL_BENCH_SECONDS).
SECONDS = labtest.threshold("LAB_TEST_POOL_BENCH_SECONDS", 900)


def _bench(*args, timeout=SECONDS):
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=labtest.REPO, capture_output=True, text=True,
                          timeout=timeout)


def _bench_processes() -> set[int]:
    """Live processes of any bench/pools.py run (their LAB_RUN_ID starts with bench-pools-)."""
    return {pid for pid in procs.marked() if (procs.run_of(pid) or "").startswith("bench-pools-")}


def _overlap(records):
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run of the bench, its stdout and its pools.json."""
    out = tmp_path_factory.mktemp("bench-pools") / "out"
    done = _bench("--quick", f"--out={out}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads((out / "pools.json").read_text()), out


@pytest.mark.slow
def test_every_cell_and_every_record(quick):
    """Each quick cell ran on a real worker and every task sent came back as a record."""
    stdout, data, out = quick
    cells = {(c["pool"], c["strategy"], c["concurrency"]): c for c in data["cells"]}
    assert set(cells) == QUICK_CELLS, sorted(cells)
    tasks = data["settings"]["tasks"]
    assert tasks >= 2, tasks  # at least one task sized to hit its deadline (the even ones)
    for key, c in cells.items():
        assert not c.get("error") and not c["errors"], (key, c.get("error"), c["errors"])
        assert sorted(r["index"] for r in c["records"]) == list(range(tasks)), key
        assert c["pool_seen"] == key[0] and {r["strategy"] for r in c["records"]} == {key[1]}, key
        # every other query is sized to outlast its deadline: the strategy stopped each of them
        assert all(r["outcome"] == "timeout" for r in c["records"] if r["index"] % 2 == 0), key
        assert c["tasks_per_s"] > 0 and c["ping_ms"]["idle_p50"] is not None, key
    for (pool, strategy, n) in QUICK_CELLS:
        label = pool if pool == "solo" else f"{pool} N={n}"
        assert any(label in line and strategy in line for line in stdout.splitlines()), (label, strategy)
    assert "x solo+process" in stdout and "ping load" in stdout
    assert "beside it" in stdout or "target (3.14t" in stdout
    assert (out / "pools.md").read_text().count("\n") > 5


@pytest.mark.slow
def test_threads_pool_runs_n_tasks_at_once(quick):
    """The threads pool ran two tasks at the same time, in two threads of one process; solo never did."""
    _, data, _ = quick
    by = {(c["pool"], c["strategy"]): c for c in data["cells"]}
    threads = by[("threads", "interrupt")]
    assert _overlap(threads["records"]) == 2 == threads["max_concurrent"]
    assert len({r["pid"] for r in threads["records"]}) == 1 and len({r["thread"] for r in threads["records"]}) == 2
    assert _overlap(by[("prefork", "interrupt")]["records"]) == 2
    assert len({r["pid"] for r in by[("prefork", "interrupt")]["records"]}) == 2
    assert _overlap(by[("solo", "interrupt")]["records"]) == 1 == _overlap(by[("solo", "process")]["records"])


@pytest.mark.slow
def test_nothing_left_running(quick):
    """After the run no process of it is alive, and the in-process strategies left no process below their worker."""
    _, data, _ = quick
    assert data["left_running"] == [] and procs.marked(data["run_id"]) == []
    assert len(data["cells"]) == len(QUICK_CELLS), data["cells"]
    for c in data["cells"]:
        if c["strategy"] != "process":
            assert c["leftovers"]["processes"] == 0 and c["leftovers"]["helpers"] == 0, c["leftovers"]


@pytest.mark.parametrize("args, flag", [
    (["--timeout", "99"], "--timeout"),
    (["--concurrency", "0"], "--concurrency"),
    (["--pools", "solo,nope"], "--pools"),
    (["--bogus"], "--bogus"),
])
def test_bad_flags_exit_2_with_one_line(args, flag, tmp_path):
    """A bad flag is one line naming it and what it accepts, exit 2, and nothing started."""
    before = _bench_processes()
    done = _bench(*args, f"--out={tmp_path / 'out'}", timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "expected" in lines[0], done.stderr
    assert done.stdout == "" and not (tmp_path / "out").exists()
    assert _bench_processes() <= before


def test_help_exits_0():
    """--help prints the usage and exits 0."""
    done = _bench("--help", timeout=30)
    assert done.returncode == 0 and "--concurrency" in done.stdout and "--quick" in done.stdout
