"""Results files are written atomically: a SIGKILL never leaves half a records.jsonl or report.

producer/results.py writes a temp file in the same folder, fsyncs it and renames it over the
target. Here a real process rewrites records.jsonl and report.md in a loop with the producer's
own functions and is SIGKILLed at random moments: once the first version of each file is in
place, every kill leaves each file present and exactly one complete version (an atomic replace
never removes the target), and the kills are shown to land mid-write (a temp file left beside
them). Then a real producer is SIGKILLed mid-run, after its first result and before its summary:
it leaves no results folder at all.
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
from labctl import procs

WRITER = r"""
import sys
from pathlib import Path
from producer.results import write_jsonl, write_text

folder = Path(sys.argv[1])
versions = [
    [{"iteration": i, "outcome": "timeout", "pad": "x" * 400, "v": v} for i in range(1, 1 + n)]
    for v, n in enumerate((3000, 5000))
]

def write(v):
    write_jsonl(folder / "records.jsonl", versions[v])
    write_text(folder / "report.md", f"# version {v}\n" + "line\n" * (20000 + 10000 * v) + "end\n")

write(1)  # from here on both files exist: a kill may replace them, never remove them
print("ready", flush=True)
i = 0
while True:
    write(i % 2)
    i += 1
    print(f"wrote {i}", flush=True)
"""


def _check_folder(folder) -> str:
    """'' if both files are there and each is one complete version, else what is wrong."""
    records, report = folder / "records.jsonl", folder / "report.md"
    missing = [p.name for p in (records, report) if not p.exists()]
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
    text = report.read_text()
    if not text.startswith("# version ") or not text.endswith("end\n"):
        return f"report.md is cut: {len(text)} characters"
    return ""


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
        extra = {p.name for p in folder.iterdir()} - {"records.jsonl", "report.md"}
        temps = {name for name in extra if name.startswith((".records.jsonl.", ".report.md."))}
        assert extra == temps, f"after SIGKILL #{kills}: unexpected files {sorted(extra - temps)}"
        mid_write += bool(temps)
    # A kill between two writes proves nothing; the writer is almost always inside one.
    assert mid_write, f"none of the {kills} kills landed mid-write (no temp file left): the test proved nothing"


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
        reltest.stop_run(run, worker)
        procs.sweep(f"{run}-producer")
    output = log.read_text()
    # The kill landed mid-run: the producer died of it, with iterations 2 and 3 still out and no summary.
    assert code == -signal.SIGKILL, f"expected the producer killed by SIGKILL (-9), got {code}:\n{output}"
    assert "3/3 iter=3" not in output and "records: " not in output, f"the run had already ended:\n{output}"
    # Killed before writing anything, it must leave nothing: not even the results folder of the run.
    run_dir = tmp_path / "results" / run
    assert not run_dir.exists(), f"expected no {run_dir}, found {sorted(os.listdir(run_dir))}"
    assert labtest.run_dirs(tmp_path / "results") == []
