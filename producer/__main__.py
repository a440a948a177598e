"""`python -m producer`: validate, enqueue, collect, summarise, write results/<run>/."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from app.kernel.envparse import ConfigError

from . import report, summary
from .config import ProducerConfig
from .results import write_jsonl, write_text
from .run import BrokerUnreachable, run


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    try:
        cfg = ProducerConfig.from_argv(argv, env)
    except ConfigError as exc:
        print(f"producer: {exc}", file=sys.stderr)
        return 2
    try:
        collected = run(cfg, say=lambda *a, **k: print(*a, **k, flush=True))
    except BrokerUnreachable as exc:
        print(
            f"producer: BROKER_URL={cfg.broker.display_url}: broker unreachable after "
            f"{cfg.broker.connect_seconds:g}s (BROKER_CONNECT_SECONDS) - {exc}; nothing was enqueued",
            file=sys.stderr,
        )
        return 2
    records = sorted(collected.records + collected.missing, key=lambda r: (r["queue"], r["iteration"]))
    run_dir = Path(cfg.results_dir) / cfg.run_id
    write_jsonl(run_dir / "records.jsonl", records)
    lines = summary.header(records)
    lines += [line for line in (env or os.environ).get("SUMMARY_NOTE", "").splitlines() if line.strip()]
    lines.append(f"run {cfg.run_id}, broker {cfg.broker.kind} ({cfg.broker.display_url})")
    lines += ["", summary.table(summary.rows(records, cfg.target_queues)), ""]
    lines += summary.notes(records)
    text = "\n".join(lines).rstrip() + "\n"
    write_text(run_dir / "summary.txt", text)
    report.write(run_dir, records, list(cfg.target_queues), cfg.run_id)
    print()
    print(text, end="")
    print(f"\nrecords: {run_dir / 'records.jsonl'}  report: {run_dir / 'report.md'}")
    if collected.missing:
        print(f"producer: {len(collected.missing)} iteration(s) missing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
