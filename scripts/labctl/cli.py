"""`scripts/lab COMMAND [...]`: one entry point for the lab on this machine, the dispatcher.

It names the commands (parsing.COMMANDS) and hands each its arguments: setup to build.py, run,
quick and down to native.py, claims to claims.py, pools to pools.py, each imported when it runs
(`scripts/lab setup` on a new machine imports the build alone). Each command parses them with
parsing.Parser: `scripts/lab COMMAND --help` (or `-h`) prints that command's usage and exits 0;
bad input is one line naming what is wrong and what is accepted, exit status 2, and nothing is
started.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Sequence

from app.kernel import settings

from .parsing import COMMANDS


def usage() -> str:
    """The top-level usage; the override names and LAB_BROKER's choices come from app/kernel/settings.py, read now."""
    commands = "\n".join(f"  {name:<8} {text}" for name, text in COMMANDS.items())
    overrides = textwrap.fill(
        "overrides (run, quick): " + ", ".join(settings.names("scripts/lab"))
        + f"; LAB_BROKER={'|'.join(settings.SETTINGS['LAB_BROKER'].choices)}"
        " (each explained by `scripts/lab run --help`; README.md, Settings)", width=100)
    return (f"usage: scripts/lab COMMAND [options] [VARIABLE=value ...]\n\ncommands:\n{commands}\n\n"
            f"{overrides}\n\n`scripts/lab COMMAND --help` shows a command's options.")


def test_venv() -> int:
    """`scripts/lab _test-venv` (scripts/test): print the test venv's python, making it once."""
    from . import paths, venvs

    python = venvs.host_venv(os.environ, say=lambda m: print(m, file=sys.stderr),
                             requirements=(*paths.VENV_REQUIREMENTS, "test.txt"), purpose="test")
    print(python)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "setup":
        from . import build

        return build.main(rest, prog="scripts/lab setup")
    if command in ("run", "quick", "down"):
        from . import native

        return native.main(command, rest)
    if command == "_test-venv":
        return test_venv()
    if command == "claims":
        from . import claims

        return claims.main(rest)
    if command == "pools":
        from . import pools

        return pools.main(rest)
    if command == "libraries":
        from . import libraries

        return libraries.main(rest)
    print(f"lab: unknown command {command!r}: expected {', '.join(list(COMMANDS)[:-1])} or {list(COMMANDS)[-1]}"
          " (scripts/lab --help)", file=sys.stderr)
    return 2
