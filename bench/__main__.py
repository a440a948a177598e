"""`bench/run [options]` (`python -m bench`): bench/strategies.py with the lab's gil and nogil venvs (scripts/lab setup).

`bench/run pools [options]`: bench/pools.py instead (the free-threaded payoff of issue 14: Celery's
threads pool beside solo and prefork, on the same venvs; it runs on this python3 and starts the
workers itself).

Runs the benchmark from the gil venv with `--python gil=... --python nogil=...`; a build whose
venv is missing is skipped with a note (with neither, this machine's quick venv runs it alone).
Options are bench/strategies.py's (e.g. `bench/run --timeouts 50`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from labctl import launch, paths


def pythons() -> dict[str, Path]:
    """build -> the python of its lab venv; this machine's newest quick venv when neither exists."""
    found = {}
    for build in paths.FLAVOURS:
        python = paths.venv_dir(os.environ.get("PYTHON_VERSION") or paths.DEFAULT_PYTHON_VERSION, build) / "bin" / "python"
        if python.exists():
            found[build] = python
        else:
            print(f"bench/run: no {build} venv at {python} (scripts/lab setup): skipping that build", file=sys.stderr)
    if not found:
        venvs = sorted((paths.cache_root() / "venv").glob("host-*/bin/python"))
        if not venvs:
            sys.exit("bench/run: no lab venv at all: run `scripts/lab setup` (or `scripts/lab quick` once)")
        found["gil"] = venvs[-1]
        print(f"bench/run: using this machine's quick venv {venvs[-1]}", file=sys.stderr)
    return found


def main(args: list[str]) -> NoReturn:
    """Become the benchmark (scripts/labctl/launch.py, on this interpreter or on the venv's)."""
    if args[:1] == ["pools"]:  # host side, standard library only: it picks the venvs itself
        launch.module("bench.pools", args[1:])
    found = pythons()
    runner = str(found.get("gil") or found["nogil"])
    given = [f"--python={build}={python}" for build, python in found.items()]
    os.execv(runner, [runner, launch.__file__, "bench.strategies", *given, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
