"""Helpers for the interpreter-build tests: they run after `scripts/lab setup` built the cache.

They never rebuild CPython: every run that could build is given a bad input (and must stop
before touching the cache) or finds everything cached. The shared inputs come from the
environment (PYTHON_SOURCE, WHEELHOUSE) or from `<repo>/../shared`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labctl import build, paths  # noqa: F401 (build: re-exported to the build tests)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build-python"

VERSION = paths.DEFAULT_PYTHON_VERSION


def shared_dir() -> Path:
    return Path(os.environ.get("LAB_SHARED") or REPO.parent / "shared")


def python_source() -> Path:
    """The CPython tarball the cache was built from (PYTHON_SOURCE, else shared/vendor/)."""
    src = os.environ.get("PYTHON_SOURCE")
    if src and not src.startswith(("http://", "https://")):
        return Path(src)
    return shared_dir() / "vendor" / f"Python-{VERSION}.tar.xz"


def wheelhouse() -> Path:
    return Path(os.environ.get("WHEELHOUSE") or shared_dir() / "wheelhouse")


def base_env(**extra: str) -> dict[str, str]:
    """The environment setup ran with: PYTHON_SOURCE and WHEELHOUSE from shared/."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_SOURCE", "PYTHON_SHA256", "WHEELHOUSE", "CONFIGURE_OPTS", "PYTHON_GIL")}
    if python_source().is_file():
        env["PYTHON_SOURCE"] = str(python_source())
    if wheelhouse().is_dir():
        env["WHEELHOUSE"] = str(wheelhouse())
    env.update(extra)
    return env


def run_build(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """Run scripts/build-python; a timeout guards against it ever starting a real build."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=base_env() if env is None else env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def snapshot(root: Path, depth: int = 4) -> dict[str, tuple[int, int, int]]:
    """What build-python owns in the cache, to `depth` levels: (inode, mtime, size) per path.

    Everything build-python writes (interpreters, venvs, markers, lab-verify.json, logs, wheels,
    downloads, build trees) sits within four levels of the cache root, and a rebuilt prefix or
    venv is a new directory (new inode). Other tools keep things in the cache too (e.g. the test
    venv this suite runs from), so only build-python's own entries are compared.
    """
    owned = [root / n for n in ("python", "wheels", "downloads", "logs", "tmp", ".build.lock")]
    owned += sorted((root / "venv").glob(f"{VERSION}-*gil-*"))
    out: dict[str, tuple[int, int, int]] = {}

    def add(p: Path) -> None:
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_ino, st.st_mtime_ns, 0 if p.is_dir() else st.st_size)

    def walk(p: Path, level: int) -> None:
        add(p)
        if level < depth and p.is_dir() and not p.is_symlink():
            for child in sorted(p.iterdir()):
                if child.name != "__pycache__":
                    walk(child, level + 1)

    for p in owned:
        if p.exists() or p.is_symlink():
            walk(p, len(p.relative_to(root).parts))
    return out


def probe(python: str, code: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "PYTHONPATH", "PYTHONHOME")}
    e.update(env)
    return subprocess.run([python, "-c", code], env=e, capture_output=True, text=True, timeout=120)


def probe_json(python: str, code: str, **env: str) -> dict:
    proc = probe(python, code, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
