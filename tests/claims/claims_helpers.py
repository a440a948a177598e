"""Helpers for tests/claims: run `scripts/lab claims` for real and read what it measured."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import labtest
from labctl import claims as lab_claims, paths

HOLDS, CAVEAT, FAILS = "holds", "holds with a caveat", "does not hold"
DAEMONIC = "daemonic processes are not allowed to have children"
TIMEOUT_ERROR = "timeout_decorator.timeout_decorator.TimeoutError"


@dataclass
class ClaimsRun:
    data: dict
    run_dir: Path
    stdout: str
    seconds: float
    asked: list[int] = field(default_factory=list)  # the claims the test asked for
    settings: lab_claims.Settings | None = None  # the command line as `scripts/lab claims` parses it
    expected: dict = field(default_factory=dict)  # job id -> the job labctl.claims.plan makes of those settings

    def claim(self, n: int) -> dict:
        return self.data["claims"][str(n)]

    def job(self, job_id: str) -> dict:
        assert job_id in self.data["jobs"], f"{job_id} did not run: {sorted(self.data['jobs'])}"
        job = self.data["jobs"][job_id]
        assert not job.get("error"), f"{job_id}: {job['error']}"
        return job

    def iterations(self, job_id: str) -> int:
        """The iterations the plan gives `job_id` for the settings the test asked for (not what its record says)."""
        assert job_id in self.expected, f"{job_id} is not in the plan for these settings: {sorted(self.expected)}"
        return self.expected[job_id].iterations or self.settings.iterations

    def records(self, job_id: str) -> list[dict]:
        """The job's records in iteration order: exactly iterations 1..N of its plan, never nothing."""
        recs = sorted(self.job(job_id)["records"], key=lambda r: r["iteration"])
        n = self.iterations(job_id)
        assert [r["iteration"] for r in recs] == list(range(1, n + 1)), (
            f"{job_id}: expected records of iterations 1..{n}, got {[r['iteration'] for r in recs]}")
        return recs

    def has(self, interp: str) -> bool:
        return interp in self.data["interpreters"]["available"]

    def need(self, *interps: str) -> None:
        for interp in interps:
            why = self.data["interpreters"]["missing"].get(interp)
            if interp == "host":
                # the lab makes the host venv itself (venvs.host_venv): never a reason to skip
                if not self.has("host"):
                    pytest.fail(f"no host interpreter, which the claims run makes itself: {why}")
                continue
            labtest.need(self.has(interp), f"no {interp} interpreter: {why}")


def installed(settings: lab_claims.Settings, env: dict) -> dict[str, bool]:
    """The interpreters on disk: the host venv always (the run makes it), the 3.14 venvs if built."""
    return {"host": True, **{b: (paths.venv_dir(settings.python_version, b, env) / "bin" / "python").exists()
                             for b in ("gil", "nogil")}}


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
    # What the run should have done, from the test's own command line and the disk, not from claims.json.
    settings = lab_claims.parse_args(argv[1:], env)
    have = installed(settings, env)
    assert data["interpreters"]["available"] == sorted(i for i, ok in have.items() if ok), (
        f"the run used {data['interpreters']['available']}, the disk has {have}")
    expected = {job.id: job for job in lab_claims.plan(settings, have)}
    return ClaimsRun(data, runs[0], done.stdout, seconds, sorted(claims), settings, expected)


def settled_live_tasks(record: dict) -> int:
    return sum(1 for p in record["settled"]["processes"] if p["role"] == "task" and p["status"] != "zombie")


def roles(record: dict, which: str) -> dict:
    return {k: v for k, v in record[which]["roles"].items() if v}
