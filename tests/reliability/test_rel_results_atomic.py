"""Results files are written atomically: a SIGKILL never leaves half a records.jsonl, claims.json or report.

app/kernel/results_io.py (the producer's producer/results.py) writes a temp file in the same folder,
fsyncs it and renames it over the target. Here a real process rewrites records.jsonl and
report.md with the producer's functions, and claims.json, claims.md and a bench JSON as
`scripts/lab claims` and bench/ write them, in a loop, and is SIGKILLed at random moments (every
other one once a write has begun): once the first version of each file is in place, every kill
leaves each file present and exactly one complete version (an atomic replace never removes the
target), and the kills are shown to land mid-write (a temp file left beside them). Then a real
producer is SIGKILLed mid-run, after its first result and before its summary: it leaves no
results folder at all.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest

import labtest
import reltest

WRITER = r"""
import sys
from pathlib import Path
from app.kernel.results_io import write_json
from producer.results import write_jsonl, write_text

folder = Path(sys.argv[1])
versions = [
    [{"iteration": i, "outcome": "timeout", "pad": "x" * 400, "v": v} for i in range(1, 1 + n)]
    for v, n in enumerate((3000, 5000))
]

claims = [{"version": v, "jobs": {f"job{i}": {"pad": "x" * 20000, "v": v} for i in range(n)}}
          for v, n in enumerate((20, 30))]

def write(v):
    write_jsonl(folder / "records.jsonl", versions[v])
    write_text(folder / "report.md", f"# version {v}\n" + "line\n" * (20000 + 10000 * v) + "end\n")
    write_json(folder / "claims.json", claims[v], indent=1, sort_keys=True)  # as scripts/labctl/claims.py
    write_text(folder / "claims.md", f"# version {v}\n" + "| row |\n" * (20000 + 10000 * v) + "end\n")
    write_json(folder / "bench.json", claims[1 - v])  # as bench/strategies.py and bench/soak.py --json

write(1)  # from here on every file exists: a kill may replace them, never remove them
print("ready", flush=True)
i = 0
while True:
    write(i % 2)
    i += 1
    print(f"wrote {i}", flush=True)
"""


FILES = ("records.jsonl", "report.md", "claims.json", "claims.md", "bench.json")


def _check_folder(folder) -> str:
    """'' if every file is there and each is one complete version, else what is wrong."""
    records = folder / "records.jsonl"
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        return f"{', '.join(missing)} missing: an atomic replace never removes the target"
    lines = records.read_text().splitlines()
    try:
        parsed = [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        return f"records.jsonl does not parse: {exc}"
    if len(parsed) not in (3000, 5000) or [r["iteration"] for r in parsed] != list(range(1, len(parsed) + 1)):
        return f"records.jsonl has {len(parsed)} records"
    if len({r["v"] for r in parsed}) != 1:
        return "records.jsonl mixes two versions"
    for name in ("report.md", "claims.md"):
        text = (folder / name).read_text()
        if not text.startswith("# version ") or not text.endswith("end\n"):
            return f"{name} is cut: {len(text)} characters"
    for name in ("claims.json", "bench.json"):
        try:
            data = json.loads((folder / name).read_text())
        except json.JSONDecodeError as exc:
            return f"{name} does not parse: {exc}"
        versions = {job["v"] for job in data["jobs"].values()}
        if len(data["jobs"]) != (20, 30)[data["version"]] or versions != {data["version"]}:
            return f"{name} mixes two versions"
    return ""


def _wait_inside_a_write(folder, timeout: float = 10.0) -> None:
    """Until a temp file of the writer is in `folder` (it is between mkstemp and the rename)."""
    deadline = time.monotonic() + timeout
    while not any(name.startswith(".") for name in os.listdir(folder)):
        assert time.monotonic() < deadline, f"no temp file in {folder} after {timeout:g}s of rewrites"


def test_sigkill_while_writing_never_leaves_half_a_file(tmp_path):
    env = reltest.env(reltest.run_id("rel-atomic"))
    rng = random.Random(6)
    kills = mid_write = 0
    for n in range(12):
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        writer = subprocess.Popen([reltest.PYTHON, "-c", WRITER, str(folder)], env=env, cwd=reltest.REPO,
                                  stdout=subprocess.PIPE, text=True)
        first = writer.stdout.readline().strip()
        assert first == "ready", f"expected the writer to say 'ready', got {first!r} (exit {writer.poll()})"
        time.sleep(rng.uniform(0.05, 0.6))
        if n % 2:  # every other kill waits until a write has begun, so that some kill lands inside one
            _wait_inside_a_write(folder)
        writer.send_signal(signal.SIGKILL)
        code = writer.wait()
        rest = writer.stdout.read()
        writer.stdout.close()
        kills += 1
        # Killed by the signal while rewriting, not exited or crashed on its own.
        assert code == -signal.SIGKILL, f"kill #{kills}: expected the writer killed by SIGKILL (-9), got {code}"
        problem = _check_folder(folder)
        assert not problem, f"after SIGKILL #{kills} ({rest.count('wrote')} rewrites done): {problem}"
        # What a kill can leave is a dot-named temp file next to them, never a target file cut short.
        extra = {p.name for p in folder.iterdir()} - set(FILES)
        temps = {name for name in extra if name.startswith(tuple(f".{f}." for f in FILES))}
        assert extra == temps, f"after SIGKILL #{kills}: unexpected files {sorted(extra - temps)}"
        mid_write += bool(temps)
    # A kill between two writes proves nothing; a random one lands inside a write about one time in four.
    assert mid_write, f"none of the {kills} kills landed mid-write (no temp file left): the test proved nothing"


@pytest.mark.slow
def test_producer_killed_mid_run_leaves_no_partial_results(tmp_path):
    """The producer writes only at the end, atomically: killed while collecting, it leaves nothing."""
    run = reltest.run_id("rel-prodkill")
    url = f"filesystem://{tmp_path / 'broker'}"
    worker = reltest.start_worker(tmp_path, "w", "gil-clean", reltest.env(run, BROKER_URL=url))
    try:
        penv = reltest.env(f"{run}-producer", BROKER_URL=url, ITERATIONS="3", TARGET_QUEUES="gil-clean",
                           DUCKDB_TIMEOUT="0.2", RESULTS_DIR=str(tmp_path / "results"),
                           RUN_ID=run)
        log = tmp_path / "producer.log"
        with open(log, "w") as out:
            producer = subprocess.Popen([reltest.PYTHON, "-m", "producer"], env=penv, cwd=reltest.REPO,
                                        stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "gil-clean: 1/3 iter=1" not in log.read_text():
                if producer.poll() is not None:
                    pytest.fail(f"the producer exited ({producer.returncode}) before its first result:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no 'gil-clean: 1/3 iter=1' from the producer after 120s:\n{log.read_text()}")
                time.sleep(0.02)
            producer.send_signal(signal.SIGKILL)
        finally:
            if producer.poll() is None:
                producer.kill()  # SIGKILL (again), also when waiting for the first result failed
            code = producer.wait()
    finally:
        left = {**reltest.stop_run(run, worker), **reltest.stop_run(f"{run}-producer")}
    assert not left, f"still running once the test stopped the worker and the producer (then swept): {left}"
    output = log.read_text()
    # The kill landed mid-run: the producer died of it, with iterations 2 and 3 still out and no summary.
    assert code == -signal.SIGKILL, f"expected the producer killed by SIGKILL (-9), got {code}:\n{output}"
    assert "3/3 iter=3" not in output and "records: " not in output, f"the run had already ended:\n{output}"
    # Killed before writing anything, it must leave nothing: not even the results folder of the run.
    run_dir = tmp_path / "results" / run
    assert not run_dir.exists(), f"expected no {run_dir}, found {sorted(os.listdir(run_dir))}"
    assert labtest.run_dirs(tmp_path / "results") == []
