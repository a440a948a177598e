"""Best-effort installs of requirements/optional.txt: what the gevent pool and the extra workloads need.

Each pin is installed on its own with `--only-binary :all:` (never a silent source build: gevent
has no cp314t wheel, and compiling it is not what a user of the lab asked for). What did not
install is recorded, with pip's reason, in `<venv>/lab-optional.json`:
{"installed": [...], "missing": {"gevent==26.9.0": "no wheel for this interpreter"}}.

Used by the venvs of scripts/labctl/build.py and native.host_venv, and by the Dockerfiles
(`python3 optional.py --python /opt/venv/bin/python --requirements optional.txt`). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FILE = "optional.txt"
RECORD = "lab-optional.json"


def pins(requirements: Path) -> list[str]:
    """The pins of `requirements`, comments and blank lines left out."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return [line for line in lines if line]


def _reason(output: str) -> str:
    for line in output.splitlines():
        if "No matching distribution" in line or "Could not find a version" in line:
            return "no wheel for this interpreter"
    tail = [line.strip() for line in output.splitlines() if line.strip()]
    return (tail[-1] if tail else "pip failed")[:200]


def install(python: str | Path, requirements: Path, log: Path | None = None, extra: list[str] | None = None) -> dict:
    """Install each pin of `requirements` into `python`'s environment; what went in and what did not, and why."""
    record: dict = {"installed": [], "missing": {}}
    for pin in pins(requirements):
        done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
                               "--only-binary", ":all:", *(extra or []), pin],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if log is not None:
            with open(log, "a") as out:
                out.write(f"# optional: pip install {pin} (exit {done.returncode})\n{done.stdout}")
        if done.returncode == 0:
            record["installed"].append(pin)
        else:
            record["missing"][pin] = _reason(done.stdout)
    prefix = Path(subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"], check=True,
                                 capture_output=True, text=True).stdout.strip())
    (prefix / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="optional.py", description=__doc__.splitlines()[0])
    p.add_argument("--python", required=True, help="the venv's python")
    p.add_argument("--requirements", required=True, type=Path, help="requirements/optional.txt")
    p.add_argument("--find-links", action="append", default=[], help="extra wheel folders")
    ns = p.parse_args(argv)
    extra = [x for d in ns.find_links for x in ("--find-links", d)]
    record = install(ns.python, ns.requirements, extra=extra)
    for pin, why in record["missing"].items():
        print(f"optional: {pin} not installed: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
