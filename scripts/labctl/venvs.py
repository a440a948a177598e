"""This machine's venvs of the lab: one per python3 and requirements, made once and reused.

`scripts/lab quick` runs its workers and producer in one (purpose "host"), `scripts/test` pytest
(purpose "test", `scripts/lab _test-venv`); claims, pools and bench/pools.py use the host one where
a CPython 3.14 build of `scripts/lab setup` is missing. The 3.14 builds' own venvs are build.py's.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

from . import optional, paths, procs


def host_venv(env: Mapping[str, str], say=print, requirements: Sequence[str] = paths.VENV_REQUIREMENTS,
              purpose: str = "host") -> Path:
    """A venv on this machine's python3 with `requirements` installed, made once and reused.

    The quick run uses the lab's pins; `scripts/test` adds pytest (purpose "test").
    """
    tag = f"{purpose}-{platform.python_implementation().lower()}{platform.python_version()}"
    venv = paths.cache_root(env) / "venv" / f"{tag}-{paths.requirements_key(*requirements)}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    listed = " ".join(f"-r requirements/{name}" for name in requirements)
    say(f"[lab] creating {venv} (pip install {listed}) ...")
    start = time.monotonic()
    venv.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for name in requirements:
        cmd += ["-r", str(paths.REQUIREMENTS / name)]
    if env.get("WHEELHOUSE"):
        cmd += ["--find-links", env["WHEELHOUSE"]]
    log = venv / "pip-install.log"
    with open(log, "wb") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        out_text = log.read_text(errors="replace")
        shutil.rmtree(venv, ignore_errors=True)
        raise RuntimeError(f"pip install failed (exit {done.returncode}):\n{procs.tail(out_text)}")
    links = ["--find-links", env["WHEELHOUSE"]] if env.get("WHEELHOUSE") else []
    record = optional.install(python, paths.REQUIREMENTS / paths.OPTIONAL_REQUIREMENTS, log, extra=links)
    for pin, why in record["missing"].items():
        say(f"[lab] optional {pin} not installed: {why}")
    (venv / ".complete").write_text("ok\n")
    say(f"[lab] venv ready in {time.monotonic() - start:.0f}s")
    return python
