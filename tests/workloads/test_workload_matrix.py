"""bench/workloads.py, the cancellation matrix, run for real on a few cells: its table agrees with what each
workload does, on this interpreter and on the 3.14 builds.

Bounds overridable: LAB_TEST_GIL_HELD_SPEED, LAB_TEST_GIL_FREE_SPEED (another thread's speed during the
call, as a fraction of its speed alone).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import labtest

BENCH = labtest.REPO / "bench" / "workloads.py"
GIL_HELD_SPEED = labtest.threshold("LAB_TEST_GIL_HELD_SPEED", 0.15)
GIL_FREE_SPEED = labtest.threshold("LAB_TEST_GIL_FREE_SPEED", 0.25)
SMALL = ["--calls", "2", "--timeout", "0.1", "--query-factor", "6"]


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=labtest.REPO, capture_output=True, text=True,
                          timeout=timeout)


def _cells(result: dict) -> dict[tuple[str, str, str], dict]:
    return {(r["interpreter"], r["workload"], r["strategy"]): r for r in result["matrix"]}


def test_help_exits_0_and_a_bad_flag_is_one_line_and_exit_2():
    """--help succeeds; a bad value is refused in one line with exit status 2."""
    assert _bench("--help").returncode == 0
    bad = _bench("--strategies", "prefork-time-limit")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    out = tmp_path_factory.mktemp("matrix-host")
    done = _bench("--interpreters", "host", "--python", f"host={sys.executable}", "--workloads", "sqlite,builtin",
                  "--strategies", "process+cleanup,signals,interrupt,func-timeout", "--out", str(out), *SMALL)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "workloads.json").read_text()), out


@pytest.mark.slow
def test_sqlite_interrupt_stops_and_its_connection_stays_usable(host):
    """sqlite3's interrupt: stopped, OperationalError told from a real error only by its message, connection usable."""
    cell = _cells(host[0])[("host", "sqlite", "interrupt")]
    assert cell["stops"] == "yes" and cell["exception"] == "sqlite3.OperationalError", cell
    assert cell["told_apart"] == "by message only ('interrupted')" and cell["usable"] is True, cell


@pytest.mark.slow
def test_the_builtin_is_not_stopped_in_process_and_burns_its_cpu(host):
    """sum(range(n)) on the GIL build: signals runs it to its end (its CPU burned after the deadline), interrupt has no stop."""
    result, _ = host
    cells = _cells(result)
    signals = cells[("host", "builtin", "signals")]
    assert signals["stops"] == "no: ran to its end", signals
    assert signals["cpu_after_s"] > 0.25 * (signals["alone_s"] - 0.1), signals
    assert signals["thread_speed"] < GIL_HELD_SPEED, signals
    assert cells[("host", "builtin", "interrupt")]["stops"] == "no such stop"


@pytest.mark.slow
def test_process_cleanup_stops_both_and_the_report_is_written(host):
    """process+cleanup stops sqlite3 and the builtin (their CPU after the deadline below what was left); the md is written."""
    result, out = host
    for workload in ("sqlite", "builtin"):
        cell = _cells(result)[("host", workload, "process+cleanup")]
        assert cell["stops"] == "yes" and cell["still_running"] == 0, cell
        assert cell["cpu_after_s"] < cell["alone_s"] - 0.1, cell
    text = (out / "workloads.md").read_text()
    assert "| host | on | sqlite | interrupt | yes |" in text, text


@pytest.mark.slow
@pytest.mark.built
def test_on_the_314_builds_the_builtin_holds_the_gil_only_where_there_is_one(tmp_path):
    """3.14 GIL: another thread stalls during sum(range(n)); 3.14t (PYTHON_GIL=0): it runs alongside; neither stops it."""
    labtest.built_python("gil"), labtest.built_python("nogil")
    done = _bench("--interpreters", "gil,nogil", "--workloads", "builtin,sqlite", "--strategies", "signals",
                  "--out", str(tmp_path), *SMALL)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "workloads.json").read_text())
    cells = _cells(result)
    assert result["interpreters"]["nogil"]["python_gil_env"] == "0"
    assert result["interpreters"]["nogil"]["gil_enabled_at_end"] is False
    assert cells[("gil", "builtin", "signals")]["thread_speed"] < GIL_HELD_SPEED
    assert cells[("nogil", "builtin", "signals")]["thread_speed"] > GIL_FREE_SPEED
    for build in ("gil", "nogil"):
        for workload in ("builtin", "sqlite"):
            assert cells[(build, workload, "signals")]["stops"] == "no: ran to its end", (build, workload)
    # importing the stdlib's sqlite3 in a fresh 3.14t process with PYTHON_GIL unset leaves the GIL off
    assert result["imports"]["nogil"]["sqlite"]["gil_after_import"] is False
    assert result["imports"]["nogil"]["sqlite"]["wheel"] == "stdlib"


@pytest.mark.slow
def test_the_target_line_weighs_the_labs_strategy_against_the_best_library(host):
    """One target line per workload run with its recommended strategy: met or missed, as its own rows say."""
    result, out = host
    cells = _cells(result)
    lines = result["targets"]
    assert len(lines) == 1 and lines[0].startswith("target host builtin: "), lines  # sqlite's deadline was not run
    ours = cells[("host", "builtin", "process+cleanup")]
    libraries = [cells[("host", "builtin", s)] for s in ("signals", "func-timeout")]
    assert ours["stops"] == "yes" and all(lib["stops"] != "yes" for lib in libraries), (ours, libraries)
    assert ": met. process+cleanup p99" in lines[0], lines[0]  # it stops the call, no library does
    assert f"- {lines[0]}" in (out / "workloads.md").read_text()
