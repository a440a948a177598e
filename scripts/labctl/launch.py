"""`python scripts/labctl/launch.py MODULE [ARGS ...]`: the lab's MODULE as `python -m MODULE ARGS ...`,
with the repository (app, producer, bench) and scripts/ (labctl) on PYTHONPATH.

Every file people run by its path comes through here: scripts/lab (`labctl`), scripts/build-python
(`labctl.build`), bench/run (`bench`) and bench/*.py (`bench.<name>`). A file run by its path has
only its own folder on sys.path; the module it becomes finds the lab's packages on PYTHONPATH, and
so does every Python process it starts with its environment (bench children, forkserver and spawn
children). It replaces the process (os.execv): the same pid, the same exit status, the same signals.
The current folder is not put first on sys.path (`-P`, CPython >= 3.11): an `app/` where the command
is typed must not stand in for the lab's.

Standard library only, importable with nothing but scripts/ on sys.path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, NoReturn, Sequence

REPO = Path(__file__).resolve().parents[2]
FOLDERS = (str(REPO / "scripts"), str(REPO))
SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else ()  # 3.10 has no -P: the current folder comes first there


def python_path(env: Mapping[str, str]) -> str:
    """`env`'s PYTHONPATH with the lab's folders first, each once."""
    given = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in FOLDERS]
    return os.pathsep.join([*FOLDERS, *given])


def module(name: str, args: Sequence[str]) -> NoReturn:
    """Become `python -m name args ...` on this interpreter, the lab's folders on PYTHONPATH."""
    os.environ["PYTHONPATH"] = python_path(os.environ)
    os.execv(sys.executable, [sys.executable, *SAFE_PATH, "-m", name, *args])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/labctl/launch.py MODULE [ARGS ...]")
    module(sys.argv[1], sys.argv[2:])
