"""Derive the partial-data inputs of tests/claims/test_claims_rules.py from recorded runs.

`python tests/claims/data/derive.py` (from the repository root) writes, from complete.json (a
real full run, both 3.14 builds) and broker_killed.json (a real full run whose broker and
workers a `scripts/lab down` elsewhere stopped mid-run):

- missing_records.json: complete.json with two job records removed (`gil-solo-mtpc1-process`,
  `thread-stop-nogil`: planned, never recorded) and one iteration's record removed from
  `host-fork-process` (iteration 2).
- failed_job.json: complete.json with `gil-solo-mtpc1-process` replaced by the record the code
  wrote for that same job when it failed in broker_killed.json (labctl.claims.run_worker: its
  worker exited before it was ready, the broker being gone; tried twice).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trim import dumps  # noqa: E402


def load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def save(name: str, data: dict) -> None:
    (HERE / name).write_text(dumps(data))
    print(f"{HERE / name}: {(HERE / name).stat().st_size:,} bytes")


def main() -> int:
    complete, killed = load("complete.json"), load("broker_killed.json")

    missing = copy.deepcopy(complete)
    for job_id in ("gil-solo-mtpc1-process", "thread-stop-nogil"):
        del missing["jobs"][job_id]
    recs = missing["jobs"]["host-fork-process"]["records"]
    missing["jobs"]["host-fork-process"]["records"] = [r for r in recs if r["iteration"] != 2]
    save("missing_records.json", missing)

    failed = copy.deepcopy(complete)
    failed["jobs"]["gil-solo-mtpc1-process"] = copy.deepcopy(killed["jobs"]["gil-solo-mtpc1-process"])
    assert failed["jobs"]["gil-solo-mtpc1-process"]["error"]
    save("failed_job.json", failed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
