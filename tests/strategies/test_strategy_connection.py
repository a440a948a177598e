"""CONNECTION=per-call|reused, on real DuckDB calls in the test process: what the close costs.

Every strategy opens and closes a DuckDB connection per call (`per-call`, the article's); after an
interrupted query the close takes milliseconds, and control comes back only after it. `reused`
keeps one connection open per thread, as a real worker does, so control comes back right after
the query stopped. Medians of interleaved calls; the bound is generous and overridable
(LAB_TEST_MIN_CLOSE_SAVING, seconds): the figures themselves are measured by
`bench/strategies.py --connection per-call,reused` and stated in docs/strategies.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading

import pytest

import labtest  # also puts the repo on sys.path
from app import strategies
from app.kernel.config import WorkerConfig
from app.kernel.envparse import ConfigError

TIMEOUT = 0.1
QUERY_SECONDS = 30 * TIMEOUT  # calibrated on this interpreter: every call below is cut short
CALLS = 9
# how much sooner control must come back (median of back - stopped) when the connection is kept
MIN_SAVING = labtest.threshold("LAB_TEST_MIN_CLOSE_SAVING", 0.0005)
MAX_OVERSHOOT = labtest.threshold("LAB_TEST_MAX_OVERSHOOT", 0.5)


def _gap(outcome: strategies.Outcome) -> float:
    """Seconds from the query stopping to control coming back: the strategy's clean-up."""
    assert outcome.outcome == "timeout" and outcome.stopped is not None, outcome
    assert 0 <= outcome.elapsed - TIMEOUT < MAX_OVERSHOOT, outcome
    return outcome.elapsed - outcome.stopped


@pytest.mark.parametrize("strategy", ["interrupt", "deadline", "signals"])
def test_a_reused_connection_gives_control_back_sooner_after_the_query_stopped(strategy):
    rows = labtest.rows_for(QUERY_SECONDS)
    gaps = {"per-call": [], "reused": []}
    for i in range(CALLS):  # interleaved: a change of load hits both alike
        for connection in (("per-call", "reused") if i % 2 else ("reused", "per-call")):
            outcome = strategies.run(strategy, rows, TIMEOUT, connection=connection)
            assert outcome.connection == connection
            gaps[connection].append(_gap(outcome))
    per_call, reused = (statistics.median(gaps[c]) for c in ("per-call", "reused"))
    assert reused + MIN_SAVING < per_call, (
        f"{strategy}: back - stopped, median of {CALLS}: per-call {per_call * 1000:.2f} ms, "
        f"reused {reused * 1000:.2f} ms; all: {gaps}")


def test_the_reused_connection_is_one_per_thread_and_survives_its_timeouts():
    """The same connection serves the next call after an interrupt (DuckDB forgets a late one), another thread gets its own."""
    rows = labtest.rows_for(QUERY_SECONDS)
    assert strategies.run("interrupt", rows, 0.05, connection="reused").outcome == "timeout"
    con = strategies.REUSED.get("interrupt", 1)
    for _ in range(3):
        assert strategies.run("interrupt", rows, 0.05, connection="reused").outcome == "timeout"
        ok = strategies.run("interrupt", 1000, 10.0, connection="reused")
        assert ok.outcome == "ok", ok
        assert strategies.REUSED.get("interrupt", 1) is con
    other = []

    def elsewhere() -> None:
        other.append(strategies.REUSED.get("interrupt", 1))
        strategies.REUSED.discard("interrupt", 1)  # the thread ends: close its connection

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert other and other[0] is not con


def test_per_call_is_the_default_and_the_process_strategies_refuse_reused():
    assert strategies.run("deadline", 1000, 10.0).connection == "per-call"
    for strategy in ("process", "process+cleanup"):
        with pytest.raises(ValueError, match="task process per call"):
            strategies.run(strategy, 1000, 10.0, connection="reused")
    with pytest.raises(ValueError, match="per-call, reused"):
        strategies.run("deadline", 1000, 10.0, connection="pooled")
    assert WorkerConfig.from_env({}).connection == "per-call"
    assert WorkerConfig.from_env({"QUEUE": "gil.interrupt", "CONNECTION": "reused"}).connection == "reused"
    with pytest.raises(ConfigError, match="CONNECTION='reused': expected per-call with process"):
        WorkerConfig.from_env({"QUEUE": "gil.process.fork", "CONNECTION": "reused"})


@pytest.mark.slow
def test_the_bench_measures_both_connections_side_by_side(tmp_path):
    """`bench/strategies.py --connection per-call,reused`: a reused variant per in-process strategy, none
    for a process strategy, and the table of query stopped / control back with the ratio."""
    out = tmp_path / "bench.json"
    bench = [sys.executable, str(labtest.REPO / "bench" / "strategies.py")]
    done = subprocess.run([*bench, "--timeouts=3", "--ok-calls=2", "--timeout=0.1", "--strategies=process,interrupt",
                           "--start-methods=forkserver", "--connection=per-call,reused", "--sigterm=default",
                           f"--json={out}"], cwd=labtest.REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (build,) = json.loads(out.read_text())["builds"].values()
    v = build["variants"]
    assert set(v) == {"process@forkserver", "interrupt", "interrupt/reused"}
    assert [v[n]["connection"] for n in ("process@forkserver", "interrupt", "interrupt/reused")] == [
        "per-call", "per-call", "reused"]
    for name in ("interrupt", "interrupt/reused"):
        assert v[name]["outcomes"] == {"timeout": 3}, v[name]
        assert v[name]["back_after_stop_ms"]["p50"] is not None and v[name]["stop_overshoot_ms"]["p50"] is not None
    assert "control back p50 per-call / reused" in done.stdout and "control back per-call : reused" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.split()[1:2] == ["interrupt"] and " / " in line)
    assert row.rstrip().endswith("x"), row  # the ratio
    bad = subprocess.run([*bench, "--connection=pooled"], cwd=labtest.REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--connection" in bad.stderr, bad.stderr
