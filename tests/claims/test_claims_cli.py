"""`scripts/lab claims`: bad input is one line naming what is wrong, exit 2, nothing started."""

from __future__ import annotations

import pytest

import labtest


@pytest.mark.parametrize(
    "args,named",
    [
        (["--claims", "9"], "--claims"),
        (["--claims", "1,1"], "--claims"),
        (["--claims"], "--claims"),
        (["--fast"], "--fast"),
        (["ITERATIONS=0"], "ITERATIONS"),
        (["ITERATIONS=many"], "ITERATIONS"),
        (["DUCKDB_TIMEOUT=nan"], "DUCKDB_TIMEOUT"),
        (["DUCKDB_ROWS=5"], "DUCKDB_ROWS"),
        (["CLAIMS_PARALLEL=9"], "CLAIMS_PARALLEL"),
        (["LAB_BROKER=kafka"], "LAB_BROKER"),
        (["BROKER_URL=redis://x"], "BROKER_URL"),
        (["FOO=1"], "FOO"),
        (["iterations"], "iterations"),
    ],
)
def test_bad_input(tmp_path, args, named):
    env = labtest.base_env(tmp_path)
    done = labtest.lab("claims", *args, env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and lines[0].startswith("lab claims: "), done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "results").exists()


def test_help_lists_claims():
    """`scripts/lab --help` exits 0 with its usage, and names the claims command."""
    done = labtest.lab("--help", timeout=30)
    assert done.returncode == 0, f"expected exit 0, got {done.returncode}: {done.stderr}"
    assert done.stdout.startswith("usage: scripts/lab COMMAND"), done.stdout
    assert "  claims   measure the article's claims" in done.stdout, done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_claims_help_exits_0_with_its_usage(tmp_path, flag):
    """`scripts/lab claims --help` exits 0, prints its usage with every variable, and runs nothing."""
    from labctl import claims

    done = labtest.lab("claims", flag, env=labtest.base_env(tmp_path), timeout=30)
    assert done.returncode == 0, f"expected exit 0, got {done.returncode}: {done.stderr}"
    assert done.stdout.startswith("usage: scripts/lab claims "), done.stdout
    assert "--claims N[,N...]|all" in done.stdout and "--quick" in done.stdout, done.stdout
    missing = [name for name in claims.VARIABLES if name not in done.stdout]
    assert missing == [], f"variables missing from the usage: {missing}"
    assert done.stderr == ""
    assert not (tmp_path / "results").exists()
