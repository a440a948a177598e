"""The built interpreters and venvs: flavours, imports, and the GIL after `import duckdb`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from build_helpers import VERSION, build, probe, probe_json

pytestmark = pytest.mark.built  # needs the interpreters from `scripts/lab setup`

FLAVOUR_CODE = (
    "import json, sys, sysconfig; print(json.dumps({'version': sys.version.split()[0],"
    " 'py_gil_disabled': sysconfig.get_config_var('Py_GIL_DISABLED'),"
    " 'gil': sys._is_gil_enabled()}))"
)
DUCKDB_CODE = (
    "import json, sys; before = sys._is_gil_enabled(); import duckdb;"
    " print(json.dumps({'before': before, 'after': sys._is_gil_enabled(),"
    " 'answer': duckdb.sql('select 42').fetchall()[0][0]}))"
)


@pytest.mark.parametrize("flavour", ["gil", "nogil"])
def test_interpreter_runs_with_its_flavour(built, flavour):
    """Each interpreter starts, is the pinned version, and has the right Py_GIL_DISABLED."""
    got = probe_json(built[flavour]["python"], FLAVOUR_CODE)
    assert got["version"] == VERSION
    if flavour == "nogil":
        assert got["py_gil_disabled"] == 1
        assert got["gil"] is False
    else:
        assert got["py_gil_disabled"] in (0, None)
        assert got["gil"] is True


@pytest.mark.parametrize("flavour", ["gil", "nogil"])
def test_venv_imports_the_lab_packages(built, flavour):
    """Each venv runs on its interpreter and imports duckdb, celery, timeout_decorator and psutil."""
    venv_python = built[flavour]["venv_python"]
    got = probe_json(venv_python, "import json, sys, duckdb, celery, timeout_decorator, psutil;"
                                  " print(json.dumps({'prefix': sys.prefix, 'base': sys.base_prefix}))")
    assert Path(got["prefix"]) == Path(built[flavour]["venv"])
    assert Path(got["base"]) == Path(built[flavour]["prefix"])


def test_nogil_keeps_gil_off_after_duckdb_with_python_gil_0(built):
    """On nogil with PYTHON_GIL=0 the GIL stays disabled after importing duckdb."""
    proc = probe(built["nogil"]["venv_python"], DUCKDB_CODE, PYTHON_GIL="0")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"before": False, "after": False, "answer": 42}
    assert "has been enabled" not in proc.stderr


def test_nogil_reenables_gil_after_duckdb_by_default(built):
    """On nogil without PYTHON_GIL importing duckdb re-enables the GIL with a RuntimeWarning."""
    proc = probe(built["nogil"]["venv_python"], DUCKDB_CODE)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"before": False, "after": True, "answer": 42}
    assert "RuntimeWarning" in proc.stderr and "global interpreter lock (GIL) has been enabled" in proc.stderr


def test_gil_build_has_gil_after_duckdb(built):
    """On the gil build the GIL is simply always on, before and after importing duckdb."""
    got = probe_json(built["gil"]["venv_python"], DUCKDB_CODE)
    assert got == {"before": True, "after": True, "answer": 42}


@pytest.mark.parametrize("flavour", ["gil", "nogil"])
def test_lab_verify_json_records_the_results(built, flavour):
    """lab-verify.json next to the interpreter and in the venv records passing checks and GIL states."""
    prefix_doc = json.loads(Path(built[flavour]["verify"]).read_text())
    venv_doc = json.loads(Path(built[flavour]["venv_verify"]).read_text())
    assert prefix_doc == venv_doc
    assert venv_doc["ok"] is True and all(venv_doc["checks"].values())
    assert venv_doc["flavour"] == flavour and venv_doc["version"] == VERSION
    runs = venv_doc["gil_after_import_duckdb"]
    assert runs["PYTHON_GIL unset"]["gil_enabled_after_import_duckdb"] is True
    if flavour == "nogil":
        assert venv_doc["py_gil_disabled"] == 1
        assert runs["PYTHON_GIL=0"]["gil_enabled_after_import_duckdb"] is False
        assert any("RuntimeWarning" in w for w in runs["PYTHON_GIL unset"]["warnings"])
    else:
        assert venv_doc["py_gil_disabled"] in (0, None)
        assert "PYTHON_GIL=0" not in runs
    for name in ("duckdb", "celery", "kombu", "billiard", "timeout-decorator", "psutil"):
        assert venv_doc["packages"][name] == build.pinned(name), name
