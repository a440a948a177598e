"""Claim 4: `import duckdb` turns the GIL on in the free-threaded build, unless PYTHON_GIL=0."""

from __future__ import annotations

import pytest

from claims_helpers import CAVEAT

pytestmark = [pytest.mark.slow, pytest.mark.built]


def test_import_duckdb_turns_the_gil_on(claims_run):
    claims_run.need("nogil")
    r = claims_run.job("gil-import-nogil-duckdb")["result"]
    assert r["build"] == "nogil" and r["PYTHON_GIL"] is None
    assert r["gil_before"] is False
    assert [s["gil_enabled"] for s in r["steps"]] == [False, True]  # _decimal keeps it off, duckdb turns it on
    assert any("GIL" in w and "duckdb" in w for w in r["warnings"]), r["warnings"]


def test_python_gil_0_keeps_it_off(claims_run):
    claims_run.need("nogil")
    r = claims_run.job("gil-import-nogil-duckdb-gil0")["result"]
    assert r["PYTHON_GIL"] == "0"
    assert [s["gil_enabled"] for s in r["steps"]] == [False, False]


def test_verdict(claims_run):
    claims_run.need("nogil")
    c = claims_run.claim(4)
    assert c["verdict"] == CAVEAT, c
    assert c["facts"]["flips"]["duckdb"] is True and c["facts"]["stays_off_with_PYTHON_GIL_0"]["duckdb"] is True
