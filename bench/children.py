"""A measuring child and its sampler: how bench/strategies.py and bench/workloads.py run one interpreter.

The child (`python -m bench.<name> --child=FILE ...`) measures in its own process and writes its
JSON to FILE (not stdout: Celery's SIGTERM handler prints there in every timed-out task process);
the sampler (`... --sampler PID`) watches the child's tree from outside it until its stdin closes,
then prints what it saw. Both run with the lab's folders on PYTHONPATH, from the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

from app.kernel import results_io
from labctl import launch

REPO = launch.REPO


def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child: PYTHON_GIL unset (`extra` sets it for a nogil child), the
    lab's folders on PYTHONPATH."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out["PYTHONPATH"] = launch.python_path(out)
    out.update(extra or {})
    return out


def module(python: str, name: str, *args: str) -> list[str]:
    """The argv of `python -m bench.<name> args ...`."""
    return [python, "-m", f"bench.{name}", *args]


def measure(prog: str, label: str, child: list[str], child_env: dict[str, str], sampler: list[str],
            sampler_env: dict[str, str]) -> tuple[dict, str]:
    """Run `child` (+ `--child=FILE`) with `sampler` (+ the child's pid) watching it: (the child's JSON,
    the sampler's output). SystemExit naming `prog` and the child's `label` if the child failed; a child
    still running when this is interrupted is killed."""
    fd, out = tempfile.mkstemp(prefix=f"{prog}-{label}-", suffix=".json")
    os.close(fd)
    proc = subprocess.Popen([*child, f"--child={out}"], env=child_env, cwd=REPO, stdout=subprocess.DEVNULL)
    watcher = subprocess.Popen([*sampler, str(proc.pid)], env=sampler_env, cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        seen, _ = watcher.communicate(input="")
    try:
        if proc.returncode:
            raise SystemExit(f"{prog}: the {label} child failed (exit {proc.returncode})")
        return json.loads(Path(out).read_text()), seen
    finally:
        os.unlink(out)


def check_ranges(parser, checks) -> None:
    """One `parser.error` line (exit 2) for the first (flags, value, lo, hi, unit) out of its range."""
    for flags, value, lo, hi, unit in checks:
        if not lo <= value <= hi:
            parser.error(f"{flags}: from {lo:g} to {hi:g}{unit}")


def helper_mode(args, sampler, child) -> int | None:
    """Run as one's own helper, `--sampler PID` or `--child FILE`, and give the exit status (None: neither)."""
    if args.sampler:
        return sampler(args.sampler)
    if args.child:
        # a file, not stdout: Celery's SIGTERM handler prints to stdout in every timed-out task process
        results_io.write_json(args.child, child(args).main(), indent=None)
        return 0
    return None
