"""Where the lab keeps things on the host: one cache directory outside the repo."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

from app.kernel import settings

PROJECT = "gil-timeout-lab"
REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
# The CPython the lab builds, and its tarball's SHA-256: declared once, in app/kernel/settings.py.
DEFAULT_PYTHON_VERSION = settings.CPYTHON_VERSION
DEFAULT_PYTHON_SHA256 = settings.CPYTHON_SHA256
FLAVOURS = ("gil", "nogil")


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """`LAB_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/gil-timeout-lab`."""
    env = os.environ if env is None else env
    if env.get("LAB_CACHE"):
        return Path(env["LAB_CACHE"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / PROJECT


def python_prefix(version: str, flavour: str, env: Mapping[str, str] | None = None) -> Path:
    """Install prefix of one built interpreter: <cache>/python/<version>-<flavour>."""
    return cache_root(env) / "python" / f"{version}-{flavour}"


OPTIONAL_REQUIREMENTS = "optional.txt"  # best effort, one by one (scripts/labctl/optional.py)


def requirements_key(*names: str) -> str:
    """A short hash of the requirement files' contents and of the optional packages (every venv
    installs those too, scripts/labctl/optional.py): a venv is rebuilt when they change."""
    digest = hashlib.sha256()
    for name in (*names, OPTIONAL_REQUIREMENTS):
        digest.update((REQUIREMENTS / name).read_bytes())
    return digest.hexdigest()[:12]


VENV_REQUIREMENTS = ("lab.txt", "report.txt")


def venv_dir(version: str, flavour: str, env: Mapping[str, str] | None = None) -> Path:
    """The lab venv on a built interpreter: <cache>/venv/<version>-<flavour>-<requirements hash>."""
    key = requirements_key(*VENV_REQUIREMENTS)
    return cache_root(env) / "venv" / f"{version}-{flavour}-{key}"
