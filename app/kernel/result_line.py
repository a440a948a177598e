"""The one line of JSON a helper process prints for the process that started it: `LAB-RESULT {json}`.

The lab's helpers run in a lab venv and answer with this line on stdout: the experiments of
`scripts/lab claims` (`python -m app.experiments.claims NAME JSON`), the sender of the lab's
tasks and of the pool benchmark's (`python -m producer.send KIND JSON`) and the benchmark's
calibration (`python -m app.experiments.bench_worker calibrate JSON`), each through `answer`. Their callers on the host
(scripts/labctl/runner.py LocalRun.result, for scripts/lab claims and pools and bench/pools.py)
read only that line from the helper's log, so whatever else an interpreter prints there (the
free-threaded build's nanobind "leaked instances" at exit, warnings, progress) never reaches a
verdict.

Standard library only: the host scripts import it before any venv exists.
"""

from __future__ import annotations

import json
import sys
from typing import Callable, Mapping, Sequence

PREFIX = "LAB-RESULT "


class Missing(ValueError):
    """The output holds no result line."""


def emit(data: dict) -> None:
    """Print `data` as the result line, on stdout, flushed."""
    print(PREFIX + json.dumps(data, sort_keys=True), file=sys.stdout, flush=True)


def read(text: str) -> dict:
    """The data of the last result line in `text` (a helper's output), found even when it is glued to
    the end of a line without a newline (the free-threaded build's nanobind leak report at exit);
    Missing when there is none."""
    for line in reversed(text.splitlines()):
        at = line.find(PREFIX)
        if at >= 0:
            return json.loads(line[at + len(PREFIX):])
    raise Missing(f"no {PREFIX.strip()} line in the output")


def answer(prog: str, helpers: Mapping[str, Callable[[dict], dict]], argv: Sequence[str] | None = None) -> int:
    """`python -m PROG NAME JSON`: the result line of helpers[NAME](the JSON); the usage and 2 for other words."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in helpers:
        print(f"usage: python -m {prog} {{{','.join(helpers)}}} JSON", file=sys.stderr)
        return 2
    emit(helpers[argv[0]](json.loads(argv[1])))
    return 0
