"""`scripts/lab COMMAND [...]`: one entry point for the lab on this machine."""

from __future__ import annotations

import sys
from typing import Sequence

USAGE = """usage: scripts/lab COMMAND [VARIABLE=value ...]

commands:
  quick    the gil and gil-clean workers on this machine's python3 (no build), in a minute
  setup    build CPython 3.14 (gil and free-threaded) and their venvs (scripts/build-python)
  run      the full lab: broker, gil / gil-clean / nogil workers, producer, summary
  down     stop anything a crashed run left behind
  claims   measure the article's claims and write results/<run>/claims.md

overrides: ITERATIONS, DUCKDB_ROWS, DUCKDB_TIMEOUT, TARGET_QUEUES, BROKER_URL, START_METHOD,
SETTLE_SECONDS, DUCKDB_THREADS, LAB_BROKER=auto|rabbitmq|filesystem, RESULTS_DIR (see README)"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "setup":
        from . import build

        return build.main(rest)
    if command in ("run", "quick", "down"):
        from . import native

        return native.main(command, rest)
    if command == "_test-venv":  # used by scripts/test: print the test venv's python, making it once
        from . import native, paths

        python = native.host_venv(
            __import__("os").environ, say=lambda m: print(m, file=sys.stderr),
            requirements=(*paths.VENV_REQUIREMENTS, "test.txt"), purpose="test",
        )
        print(python)
        return 0
    if command == "claims":
        from . import claims

        return claims.main(rest)
    print(f"lab: unknown command {command!r}: expected quick, setup, run, down or claims", file=sys.stderr)
    return 2
