"""`scripts/lab COMMAND --help` for every command, unknown options, and `all` for list options.

No broker, no workers, no builds: all of this is argument parsing, which must answer before
anything starts. The real `scripts/lab` runs as a process where the exit status and the output
streams are the point; the expansion of `all` goes through the parsing functions themselves.
"""

from __future__ import annotations

import json

import pytest

import labtest
from app.kernel import axes
from app.kernel.envparse import ConfigError
from labctl import build, claims, cli, native, parsing

COMMANDS = list(parsing.COMMANDS)
EVERY_QUEUE = [axes.strategy_queue(b, s) for b in axes.BUILDS for s in axes.STRATEGY_NAMES]


def _env(tmp_path) -> dict[str, str]:
    """A lab environment whose cache and results are folders this test can check are never made."""
    return labtest.base_env(tmp_path, LAB_CACHE=str(tmp_path / "cache"), RUN_ID="cli-help-test")


def _nothing_made(tmp_path) -> None:
    made = [p.name for p in (tmp_path / "cache", tmp_path / "results") if p.exists()]
    assert made == [], f"expected no cache and no results folder, found {made}"


def test_commands_are_the_seven_documented_ones():
    """The table the usage and the tests below iterate over is quick, setup, run, down, claims, pools, libraries."""
    assert COMMANDS == ["quick", "setup", "run", "down", "claims", "pools", "libraries"]


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_with_its_usage_and_exit_0(tmp_path, command, flag):
    """`scripts/lab CMD --help` (and -h) prints a usage line naming CMD, exits 0 and starts nothing."""
    done = labtest.lab(command, flag, env=_env(tmp_path), timeout=60)

    assert done.returncode == 0, f"expected exit 0, got {done.returncode}: {done.stderr}"
    first = done.stdout.splitlines()[0] if done.stdout else ""
    assert first.startswith(f"usage: scripts/lab {command} "), f"expected a usage line naming {command}, got {first!r}"
    assert done.stderr == "", done.stderr
    _nothing_made(tmp_path)


def test_top_level_help_lists_every_command_and_every_override(capsys):
    """`scripts/lab --help` exits 0 naming every command and every override native.OVERRIDES has now."""
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: scripts/lab COMMAND"), out
    missing = [name for name in (*COMMANDS, *native.OVERRIDES) if name not in out]
    assert missing == [], f"not in scripts/lab --help: {missing}"


@pytest.mark.parametrize("mode", ["run", "quick"])
def test_run_and_quick_help_list_every_override_strategy_and_build(capsys, mode):
    """The usage of run/quick is built from native.OVERRIDES and app.kernel.defaults at run time, so a new name shows up."""
    assert native.main(mode, ["--help"], env={}) == 0
    out = capsys.readouterr().out
    missing = [n for n in (*native.OVERRIDES, *axes.STRATEGY_NAMES, *axes.BUILDS, *axes.POOL_NAMES,
                           *axes.WORKLOAD_NAMES, "--strategies", "--builds", "--pools", "--workloads",
                           "VARIABLE=value", parsing.ALL) if n not in out]
    assert missing == [], f"not in scripts/lab {mode} --help: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_one_line_naming_it_exit_2_nothing_started(tmp_path, command):
    """An unknown option exits 2 with one stderr line naming it and what is accepted; nothing is made."""
    done = labtest.lab(command, "--frobnicate", env=_env(tmp_path), timeout=60)

    assert done.returncode == 2, f"expected exit 2, got {done.returncode}: {done.stdout}{done.stderr}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{done.stderr}"
    assert "unknown option --frobnicate" in lines[0] and "expected" in lines[0] and "--help" in lines[0], lines[0]
    assert done.stdout == ""
    _nothing_made(tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["run", "--strategies"], "--strategies needs a value: expected all, or a comma-separated list of"),
    (["quick", "--builds"], "--builds needs a value: expected all, or a comma-separated list of gil, nogil"),
    (["run", "--strategies", "all,deadline"], "STRATEGIES='all,deadline': expected all alone"),
    (["run", "--strategies", "deadline", "--builds", "pypy"], "BUILDS='pypy': expected all, or"),
    (["run", "--strat", "deadline"], "unknown option --strat"),
    (["down", "now"], "down takes no arguments, got now"),
    (["claims", "--claims"], "--claims needs a value: expected all, or"),
    (["claims", "--claims", "all,3"], "--claims 'all,3': expected all, or"),
    (["run", "--pools", "threads"], "--pools goes with --strategies"),
    (["run", "--strategies", "deadline", "--pools", "eventlet"], "POOLS='eventlet': expected all, or"),
    (["quick", "--strategies", "deadline", "--workloads", "torch"], "WORKLOADS='torch': expected all, or"),
    (["pools", "--builds", "pypy"], "BUILDS='pypy': expected all, or"),
    (["setup", "stray"], "unexpected argument 'stray'"),
    (["setup", "--version"], "--version needs a value"),
])
def test_bad_values_of_options_are_one_line_exit_2_nothing_started(tmp_path, args, needle):
    """A list option with no value, `all` mixed with names, an abbreviation or a stray word: one line, exit 2."""
    done = labtest.lab(*args, env=_env(tmp_path), timeout=60)

    assert done.returncode == 2, f"expected exit 2, got {done.returncode}: {done.stdout}{done.stderr}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], f"expected one line with {needle!r}, got:\n{done.stderr}"
    assert done.stdout == ""
    _nothing_made(tmp_path)


def test_strategies_all_means_every_strategy_on_every_build():
    """`--strategies all` (any spelling) gives the queues of every strategy on every build."""
    for args in (["--strategies", "all"], ["--strategies=all"], ["--strategies", "all", "--builds", "all"],
                 ["--builds=all", "--strategies", " all "]):
        got = native.parse_overrides(args)["TARGET_QUEUES"].split(",")
        assert got == EVERY_QUEUE, f"{args}: expected {EVERY_QUEUE}, got {got}"


def test_builds_all_means_every_build():
    """`--builds all` with named strategies gives those strategies on every build; a named build only its own."""
    got = native.parse_overrides(["--strategies", "deadline,interrupt", "--builds", "all"])["TARGET_QUEUES"]
    expected = ",".join(axes.strategy_queue(b, s) for b in axes.BUILDS for s in ("deadline", "interrupt"))
    assert got == expected
    assert native.parse_overrides(["--strategies", "all", "--builds", "gil"])["TARGET_QUEUES"] == ",".join(
        axes.strategy_queue("gil", s) for s in axes.STRATEGY_NAMES)


def test_pools_and_workloads_multiply_the_matrix():
    """`--pools` and `--workloads` give builds x strategies x pools x workloads, naming only what is not the default."""
    got = native.parse_overrides(["--strategies", "interrupt,prefork-time-limit", "--builds", "gil",
                                  "--pools", "solo,threads", "--workloads", "duckdb,sqlite"])["TARGET_QUEUES"]
    assert got.split(",") == ["gil.interrupt", "gil.interrupt.sqlite", "gil.interrupt.threads",
                              "gil.interrupt.threads.sqlite", "gil.prefork-time-limit.solo",
                              "gil.prefork-time-limit.solo.sqlite", "gil.prefork-time-limit.threads",
                              "gil.prefork-time-limit.threads.sqlite"]


def test_report_answers_help_and_bad_input(tmp_path):
    """`python -m producer.report --help` exits 0; a folder without records.jsonl is one line and exit 2."""
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "producer.report", "--help"], cwd=labtest.REPO, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("usage: python -m producer.report"), ok.stderr
    bad = subprocess.run([sys.executable, "-m", "producer.report", str(tmp_path)], cwd=labtest.REPO,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "records.jsonl" in bad.stderr, bad.stderr


def test_all_next_to_names_is_rejected():
    """`all` is a value on its own: `all,deadline` is bad input, not every strategy twice."""
    with pytest.raises(ConfigError) as caught:
        native.parse_overrides(["--strategies", "all,deadline"])
    assert caught.value.name == "STRATEGIES" and "all alone" in str(caught.value)


def test_overrides_work_as_before_between_options():
    """VARIABLE=value words still go anywhere around the options, and are validated against native.OVERRIDES."""
    got = native.parse_overrides(["ITERATIONS=5", "--strategies", "deadline", "DUCKDB_TIMEOUT=1", "--builds", "gil"])
    assert got == {"ITERATIONS": "5", "DUCKDB_TIMEOUT": "1", "TARGET_QUEUES": "gil.deadline"}
    assert native.parse_overrides(["RUN_ID=x", "LAB_BROKER=filesystem"]) == {"RUN_ID": "x", "LAB_BROKER": "filesystem"}
    with pytest.raises(native.UsageError, match="unknown variable ITERATONS, expected one of ITERATIONS"):
        native.parse_overrides(["ITERATONS=5"])
    with pytest.raises(native.UsageError, match="expected VARIABLE=value"):
        native.parse_overrides(["iterations=5"])


def test_claims_all_means_every_claim():
    """`scripts/lab claims --claims all` measures claims 1 to 8, like no --claims at all."""
    for args in (["--claims", "all"], ["--claims=all"], ["--quick", "--claims", "all", "ITERATIONS=2"]):
        settings = claims.parse_args(args, {})
        assert settings.claims == claims.CLAIMS, f"{args}: expected {claims.CLAIMS}, got {settings.claims}"
    assert claims.parse_args(["--claims", "5,1"], {}).claims == (1, 5)


def test_setup_flavour_all_means_both(tmp_path, capsys):
    """`scripts/lab setup --flavour all` is both flavours (checked with --print-paths, which builds nothing)."""
    env = {"LAB_CACHE": str(tmp_path / "cache")}
    assert build.main(["--print-paths", "--flavour", "all"], env=env, prog="scripts/lab setup") == 0
    assert set(json.loads(capsys.readouterr().out)) == set(build.FLAVOURS)
    assert not (tmp_path / "cache").exists()
