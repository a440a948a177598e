"""Helpers for tests/claims: run `scripts/lab claims` for real and read what it measured."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import labtest

HOLDS, CAVEAT, FAILS = "holds", "holds with a caveat", "does not hold"
DAEMONIC = "daemonic processes are not allowed to have children"
TIMEOUT_ERROR = "timeout_decorator.timeout_decorator.TimeoutError"


@dataclass
class ClaimsRun:
    data: dict
    run_dir: Path
    stdout: str
    seconds: float

    def claim(self, n: int) -> dict:
        return self.data["claims"][str(n)]

    def job(self, job_id: str) -> dict:
        assert job_id in self.data["jobs"], f"{job_id} did not run: {sorted(self.data['jobs'])}"
        job = self.data["jobs"][job_id]
        assert not job.get("error"), f"{job_id}: {job['error']}"
        return job

    def records(self, job_id: str) -> list[dict]:
        return sorted(self.job(job_id)["records"], key=lambda r: r["iteration"])

    def has(self, interp: str) -> bool:
        return interp in self.data["interpreters"]["available"]

    def need(self, *interps: str) -> None:
        for interp in interps:
            labtest.need(self.has(interp), f"no {interp} interpreter: {self.data['interpreters']['missing'].get(interp)}")


def run_claims(tmp: Path, claims: list[int], *args: str, **env_overrides: str) -> ClaimsRun:
    env = labtest.base_env(tmp, **env_overrides)
    results = tmp / "results"
    argv = ["claims", "--quick", "--claims", ",".join(map(str, claims)), f"RESULTS_DIR={results}", *args]
    if env.get("BROKER_URL"):
        argv.append(f"BROKER_URL={env['BROKER_URL']}")
    start = time.monotonic()
    done = labtest.lab(*argv, env=env, timeout=900)
    seconds = time.monotonic() - start
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    runs = [p for p in results.iterdir() if (p / "claims.json").exists()]
    assert len(runs) == 1, runs
    data = json.loads((runs[0] / "claims.json").read_text())
    return ClaimsRun(data, runs[0], done.stdout, seconds)


def settled_live_tasks(record: dict) -> int:
    return sum(1 for p in record["settled"]["processes"] if p["role"] == "task" and p["status"] != "zombie")


def roles(record: dict, which: str) -> dict:
    return {k: v for k, v in record[which]["roles"].items() if v}
