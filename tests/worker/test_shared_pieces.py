"""The shared pieces: app/kernel/tables.py renders tables, app/kernel/stats.py takes percentiles, app/kernel/results_io.py writes files."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

import labtest
from app.kernel import stats, tables

HEADERS = ["queue", "n", "settled"]
ROWS = [["gil", 3, "3/1"], ["nogil.thread", 10, "0/0"]]


def test_text_table_is_two_space_columns_with_dashes_under_the_headers():
    """The text table pads every column, the last one too, to its widest cell and joins them with two spaces."""
    assert tables.render(HEADERS, ROWS) == (
        "queue         n   settled\n"
        "------------  --  -------\n"
        "gil           3   3/1    \n"
        "nogil.thread  10  0/0    "
    )


def test_markdown_table_is_unpadded_cells_under_a_dashes_row():
    """The markdown table is `| a | b |` lines with unpadded cells and a `|---|` row per column under the headers."""
    assert tables.render(HEADERS, ROWS, markdown=True) == (
        "| queue | n | settled |\n"
        "|---|---|---|\n"
        "| gil | 3 | 3/1 |\n"
        "| nogil.thread | 10 | 0/0 |"
    )


def test_a_table_without_rows_is_its_headers_and_a_row_with_the_wrong_cell_count_is_refused():
    """No rows gives the headers and their rule; a row of another width raises instead of shifting columns."""
    assert tables.render(["a", "bb"], []) == "a  bb\n-  --"
    assert tables.render(["a", "bb"], [], markdown=True) == "| a | bb |\n|---|---|"
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 headers"):
        tables.render(["a", "bb"], [["x"]])


def test_percentile_is_the_nearest_rank_on_known_inputs():
    """Percentiles are values of the input (index round(q*(n-1)) of the sorted values), None for no values."""
    hundred = list(range(100, 0, -1))  # 1..100, unsorted
    assert [stats.percentile(hundred, q) for q in (0.0, 0.5, 0.99, 1.0)] == [1, 51, 99, 100]
    assert stats.percentile([4, 1, 3, 2], 0.5) == 3  # round(1.5) = 2
    assert stats.percentile([2, 1], 0.5) == 1  # round(0.5) = 0
    assert stats.percentile([0.25], 0.99) == 0.25
    assert stats.percentile([], 0.5) is None
    with pytest.raises(ValueError):
        stats.percentile([1.0], 99)


def test_shared_pieces_import_only_the_standard_library():
    """app.kernel.tables, app.kernel.stats and app.kernel.results_io load in a fresh interpreter with nothing but the standard library."""
    code = ("import json, sys\nimport app.kernel.tables, app.kernel.stats, app.kernel.results_io\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names"
            " and m.split('.')[0] not in ('app', '__main__'))))")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=labtest.REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


# A writer SIGKILLed mid-write (records.jsonl, report.md, claims.json, claims.md, a bench JSON):
# tests/reliability/test_rel_results_atomic.py.


def _plain_writes(path, only=None) -> list[str]:
    """The plain `x.write_text(...)` / `x.write_bytes(...)` calls in a file (receiver mentioning `only`, if given)."""
    source = path.read_text()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("write_text", "write_bytes"):
            receiver = ast.get_source_segment(source, node.func.value)
            if receiver.split(".")[-1] == "results_io":
                continue
            if only is None or any(word in receiver for word in only):
                out.append(f"{path.name}:{node.lineno}: {receiver}.{node.func.attr}(...)")
    return out


def test_results_files_are_written_through_the_atomic_writer():
    """bench/strategies.py, bench/soak.py and claims.py's claims.json/claims.md writes use no plain write_text."""
    repo = labtest.REPO
    plain = (_plain_writes(repo / "bench" / "strategies.py") + _plain_writes(repo / "bench" / "soak.py")
             + _plain_writes(repo / "scripts" / "labctl" / "claims.py", only=("claims.json", "claims.md")))
    assert plain == []
