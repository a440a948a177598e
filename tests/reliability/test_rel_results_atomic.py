"""Results files are written atomically: a SIGKILL never leaves half a records.jsonl or report.

producer/results.py writes a temp file in the same folder, fsyncs it and renames it over the
target. Here a real process rewrites records.jsonl and report.md in a loop with the producer's
own functions and is SIGKILLed at random moments: every time, each file is absent or exactly one
complete version. Then a real producer is SIGKILLed mid-run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

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
print("ready", flush=True)
i = 0
while True:
    v = i % 2
    write_jsonl(folder / "records.jsonl", versions[v])
    write_text(folder / "report.md", f"# version {v}\n" + "line\n" * (20000 + 10000 * v) + "end\n")
    i += 1
"""


def _check_folder(folder) -> str:
    """'' if the files are absent or complete, else what is wrong."""
    records = folder / "records.jsonl"
    if records.exists():
        lines = records.read_text().splitlines()
        try:
            parsed = [json.loads(line) for line in lines]
        except json.JSONDecodeError as exc:
            return f"records.jsonl does not parse: {exc}"
        if len(parsed) not in (3000, 5000) or [r["iteration"] for r in parsed] != list(range(1, len(parsed) + 1)):
            return f"records.jsonl has {len(parsed)} records"
        if len({r["v"] for r in parsed}) != 1:
            return "records.jsonl mixes two versions"
    report = folder / "report.md"
    if report.exists():
        text = report.read_text()
        if not text.startswith("# version ") or not text.endswith("end\n"):
            return f"report.md is cut: {len(text)} characters"
    return ""


def test_sigkill_while_writing_never_leaves_half_a_file(tmp_path):
    env = reltest.env(reltest.run_id("rel-atomic"))
    rng = random.Random(6)
    kills = 0
    for n in range(12):
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        writer = subprocess.Popen([reltest.PYTHON, "-c", WRITER, str(folder)], env=env, cwd=reltest.REPO,
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        kills += 1
        problem = _check_folder(folder)
        assert not problem, f"after SIGKILL #{kills}: {problem}"
        # What a kill can leave is a dot-named temp file next to them, never a target file cut short.
        assert {p.name for p in folder.iterdir()} - {"records.jsonl", "report.md"} <= {
            p.name for p in folder.iterdir() if p.name.startswith((".records.jsonl.", ".report.md."))}


def test_producer_killed_mid_run_leaves_no_partial_results(tmp_path):
    """The producer writes only at the end, atomically: killed while collecting, it leaves nothing."""
    run = reltest.run_id("rel-prodkill")
    url = f"filesystem://{tmp_path / 'broker'}"
    worker = reltest.start_worker(tmp_path, "w", "gil-clean", reltest.env(run, BROKER_URL=url))
    try:
        penv = reltest.env(f"{run}-producer", BROKER_URL=url, ITERATIONS="3", TARGET_QUEUES="gil-clean",
                           DUCKDB_ROWS="300000000", DUCKDB_TIMEOUT="0.2", RESULTS_DIR=str(tmp_path / "results"),
                           RUN_ID=run)
        producer = subprocess.Popen([reltest.PYTHON, "-m", "producer"], env=penv, cwd=reltest.REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in producer.stdout:
            if "1/3 iter=1" in line:
                break
        producer.send_signal(signal.SIGKILL)
        producer.wait()
        producer.stdout.close()
    finally:
        reltest.stop_run(run, worker)
        procs.sweep(f"{run}-producer")
    run_dir = tmp_path / "results" / run
    assert not run_dir.exists() or not any(p.name in ("records.jsonl", "summary.txt", "report.md")
                                           for p in run_dir.iterdir()), sorted(os.listdir(run_dir))
    assert labtest.run_dirs(tmp_path / "results") == []
